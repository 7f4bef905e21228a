#!/bin/bash
# A real one-node Slurm on localhost runs a 3-index β sweep of the tiny model on Wasm, as a cluster
# would: `statcell sweep plan` → `sbatch slurm.sbatch` → all three DONE; one task requeued mid-training
# (`scontrol requeue`) resumes and ends bit-identical to the same index run uninterrupted.
# Follows ../shared/docs/slurm-local.md (Debian 12, root, no systemd). Not part of CI (minutes).
# Usage (as root, from the repository root): bash test/slurm/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
T=$(mktemp -d /tmp/statcell-slurm.XXXXXX)
PIDS=()
say() { echo "[slurm-test $(date -u +%T)] $*"; }

cleanup() {
  set +e
  if [ -n "${JOB:-}" ] && command -v scancel >/dev/null; then
    scancel "$JOB" 2>/dev/null
    for _ in $(seq 30); do [ -z "$(squeue -h -r -j "$JOB" 2>/dev/null)" ] && break; sleep 1; done
  fi
  # Only the daemons this script started, by their pids, last started first.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done; done
  say "stopped daemons ${PIDS[*]:-none}"
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# 1. Packages (Debian's Slurm and munge) when missing.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  say "installing slurmctld slurmd slurm-client munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null; }
fi

# 2. munge: a key, its run dir, the daemon as the munge user (it refuses root).
[ -f /etc/munge/munge.key ] || mungekey --create --force
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  setpriv --reuid=munge --regid=munge --init-groups munged -F >"$T/munged.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
fi
munge -n | unmunge >/dev/null && say "munge ready"

# 3. slurm.conf for one node, no cgroups, no accounting; state and logs under $T.
H=$(hostname -s)
mkdir -p "$T/state" "$T/spool" "$T/log"
cat >"$T/slurm.conf" <<CONF
ClusterName=statcell
SlurmctldHost=$H
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SlurmUser=root
SlurmdUser=root
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
NodeName=$H CPUs=$(nproc) RealMemory=$(free -m | awk '/^Mem:/ { print int($2 * 0.9) }') State=UNKNOWN
PartitionName=main Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$T/slurm.conf
slurmctld -D -i -f "$SLURM_CONF" >"$T/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$T/log/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do [ "$(sinfo -h -n "$H" -o %t 2>/dev/null)" = idle ] && break; sleep 0.5; done
[ "$(sinfo -h -n "$H" -o %t)" = idle ] || { say "node not idle"; cat "$T/log/"*; exit 1; }
say "slurm ready: $(sinfo -h -o '%P %D %t %c')"

# 4. Data, and the same 3-index plan twice: S for Slurm, R for the uninterrupted reference.
# 400 iterations of batch 4 (a checkpoint every 20) last long enough to requeue a task mid-run.
node -e "
  import('tsx/esm/api').then(({ register }) => { register(); return import('$REPO/data/synth.ts'); })
    .then(({ synthesize }) => synthesize({ out: '$T/data', cells: 24, dims: 2, size: [24, 16], seed: 3 }));"
plan() { node cli/statcell.js sweep plan --model test/models/tiny.vae --set 'size=[24,16]' --sweep beta=0.01,0.5,0.99 \
  --data "$T/data/manifest.csv" --out "$1" --backend wasm --batch 4 --iterations 400 --checkpoint-every 20 --eval-samples 1 --gpus 0 2>/dev/null; }
S=$T/sweep
plan "$S"
plan "$T/ref"
grep '^#SBATCH' "$S/slurm.sbatch"

# 5. Submit the generated script; requeue task 1 once it has a checkpoint and is not done.
JOB=$(sbatch --parsable "$S/slurm.sbatch")
say "submitted job array $JOB"
REQUEUED=
for _ in $(seq 600); do
  if [ -z "$REQUEUED" ] && ls "$S/runs/1/checkpoints/"*.safetensors >/dev/null 2>&1 && [ ! -e "$S/runs/1/DONE" ]; then
    AT=$(ls "$S/runs/1/checkpoints/" | grep -c safetensors)
    scontrol requeue "${JOB}_1"
    REQUEUED=1
    say "requeued ${JOB}_1 mid-training ($AT checkpoint(s) written)"
  fi
  [ -z "$(squeue -h -r -j "$JOB" 2>/dev/null)" ] && break
  sleep 0.5
done
[ -n "$(squeue -h -r -j "$JOB" 2>/dev/null)" ] && { say "job still queued after 300 s"; squeue -r -j "$JOB"; exit 1; }
say "queue empty"
node cli/statcell.js sweep status "$S"

# 6. Checks: all DONE; task 1 resumed (its log shows the resume) and ends bit-identical.
for i in 0 1 2; do [ -e "$S/runs/$i/DONE" ] || { say "FAIL: index $i not DONE"; cat "$S/logs/"*; exit 1; }; done
say "all three DONE"
[ -n "$REQUEUED" ] || { say "FAIL: the task was never requeued"; exit 1; }
grep -h "resuming from" "$S/logs/${JOB}_1.out" || { say "FAIL: task 1 did not resume"; cat "$S/logs/${JOB}_1.out"; exit 1; }
node cli/statcell.js sweep run "$T/ref" --index 1 2>/dev/null
# The final weights: the checkpoint the `latest` pointer names (session/checkpoint.ts).
final() { echo "$1/runs/1/checkpoints/$(tr -d '[:space:]' <"$1/runs/1/checkpoints/latest").safetensors"; }
A=$(final "$S")
B=$(final "$T/ref")
say "requeued: $A ($(sha256sum <"$A" | cut -c1-16)); uninterrupted: $B ($(sha256sum <"$B" | cut -c1-16))"
[ "$(basename "$A")" = "$(basename "$B")" ] && cmp -s "$A" "$B" || { say "FAIL: the requeued index differs from the uninterrupted one"; exit 1; }
say "PASS: requeued index 1 is bit-identical to the uninterrupted run"
