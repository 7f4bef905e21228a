// The plan handed to the schedulers users' clusters already run: a Slurm job array
// (S/slurm.sbatch) and a Kubernetes Indexed Job (S/job.yaml). Each task only names its index;
// `statcell sweep run` reads everything else from S/sweep.json, so both files stay small and a
// requeued or retried task resumes the same index from its checkpoint.

import { writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { stringify } from 'yaml';
import type { SweepPlan } from './plan.ts';
import { makeDirs } from '../data/files.ts';

export interface SchedulerOptions {
  /** GPUs per task (0 on a CPU cluster: no --gres / no nvidia.com/gpu). */
  gpus: number;
  /** How a task starts statcell (default: the node and entry script of the statcell that wrote the plan). */
  statcell: string;
  /** Kubernetes: the image holding statcell, the pods that run at once, the claim mounted at the sweep directory. */
  image: string;
  parallelism: number;
  pvc: string;
  /** Slurm: extra `#SBATCH` lines, e.g. --partition=gpu. */
  sbatch: string[];
  /** Retries of one index before it counts as failed (Kubernetes backoffLimitPerIndex). */
  retries: number;
}

/** One word for a POSIX shell. */
export const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * One argument of an `#SBATCH` line: sbatch splits them at whitespace, groups quoted characters,
 * takes a backslash as an escape and an unquoted `#` as the start of a comment.
 */
const sbatchQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`);

/** The plan's files that a pod, which mounts only the sweep directory, would not find. */
export function outsideSweep(dir: string, plan: SweepPlan): string[] {
  const S = resolve(dir) + sep;
  return [plan.model, plan.data].filter((f) => !resolve(f).startsWith(S));
}

export function sbatchScript(dir: string, plan: SweepPlan, o: SchedulerOptions): string {
  const S = resolve(dir);
  return [
    '#!/bin/bash',
    `# statcell sweep: ${plan.indices.length} indices of ${plan.model} (${plan.axes.map((a) => a.name).join(' × ')}); submit with: sbatch ${join(S, 'slurm.sbatch')}`,
    '#SBATCH --job-name=statcell-sweep',
    `#SBATCH --array=0-${plan.indices.length - 1}`,
    ...(o.gpus > 0 ? [`#SBATCH --gres=gpu:${o.gpus}`] : []),
    // A requeued task (preemption, node failure, scontrol requeue) reruns its index, which resumes.
    '#SBATCH --requeue',
    '#SBATCH --open-mode=append',
    `#SBATCH --output=${sbatchQuote(join(S, 'logs', '%A_%a.out'))}`,
    ...o.sbatch.map((l) => `#SBATCH ${l}`),
    'set -euo pipefail',
    `exec ${o.statcell} sweep run ${shellQuote(S)} --index "$SLURM_ARRAY_TASK_ID"`,
    '',
  ].join('\n');
}

export function jobManifest(dir: string, plan: SweepPlan, o: SchedulerOptions): Record<string, unknown> {
  const S = resolve(dir);
  const n = plan.indices.length;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'statcell-sweep', labels: { app: 'statcell-sweep' } },
    spec: {
      completionMode: 'Indexed',
      completions: n,
      parallelism: Math.min(o.parallelism, n),
      // Each index retries on its own; one bad index does not fail the others.
      backoffLimitPerIndex: o.retries,
      template: {
        metadata: { labels: { app: 'statcell-sweep' } },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'train',
              image: o.image,
              // The index comes from JOB_COMPLETION_INDEX, which Kubernetes sets in every pod of an Indexed Job.
              command: ['statcell', 'sweep', 'run', S],
              resources: o.gpus > 0 ? { limits: { 'nvidia.com/gpu': o.gpus } } : {},
              volumeMounts: [{ name: 'sweep', mountPath: S }],
            },
          ],
          volumes: [{ name: 'sweep', persistentVolumeClaim: { claimName: o.pvc } }],
        },
      },
    },
  };
}

function readme(dir: string, plan: SweepPlan, o: SchedulerOptions): string {
  const S = resolve(dir);
  const n = plan.indices.length;
  return `# statcell sweep: ${n} indices

${plan.model} on ${plan.data}, swept over ${plan.axes.map((a) => `${a.name} ∈ {${a.values.join(', ')}}`).join(' × ')}.
Every task trains one index into \`runs/<index>\` and resumes from its latest checkpoint when
rerun, so a requeue or retry repeats nothing; \`runs/<index>/DONE\` marks a finished index.

- **Slurm**: \`sbatch ${join(S, 'slurm.sbatch')}\` (a job array 0-${n - 1}${o.gpus ? `, ${o.gpus} GPU per task` : ', no GPUs'}; logs in \`logs/\`).
  The sweep directory and \`${o.statcell}\` must be reachable from the compute nodes.
- **Kubernetes**: \`kubectl apply -f ${join(S, 'job.yaml')}\` (an Indexed Job, ${n} completions, ${Math.min(o.parallelism, n)} at a time${o.gpus ? `, ${o.gpus} GPU per pod` : ''}).
  The image \`${o.image}\` must provide \`statcell\`, and the claim \`${o.pvc}\` must hold this directory at ${S}.${outsideSweep(dir, plan).length ? `
  The pods mount only that directory: ${outsideSweep(dir, plan).join(' and ')} must be in the image or another volume at the same path${outsideSweep(dir, plan).length > 1 ? 's' : ''} (with the images the manifest names), or be copied into this directory before \`statcell sweep plan\`.` : ''}
- **This machine**: \`statcell sweep run ${S} --local --parallel 2\`.

Then \`statcell sweep status ${S}\` and \`statcell sweep collect ${S}\`.
`;
}

export function writeSchedulerFiles(dir: string, plan: SweepPlan, o: SchedulerOptions): void {
  // Slurm does not create the --output folder: a task whose log folder is missing fails at once.
  makeDirs(join(dir, 'logs'));
  writeFileSync(join(dir, 'slurm.sbatch'), sbatchScript(dir, plan, o), { mode: 0o755 });
  writeFileSync(join(dir, 'job.yaml'), stringify(jobManifest(dir, plan, o)));
  writeFileSync(join(dir, 'README.md'), readme(dir, plan, o));
}
