#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, install the tarball into an empty project, and run
# the installed command there — `--help` (timed), a short `statcell demo`, and the library's types
# from a TypeScript file. Run by .ci/run after the test suite; needs the npm registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(npm pack --silent --pack-destination "$work" | tail -n1)
echo "pack: $tarball, $(du -k "$work/$tarball" | cut -f1) KiB"
mkdir "$work/app" && cd "$work/app"
npm init -y >/dev/null
npm install --no-audit --no-fund --loglevel=error "$work/$tarball" typescript@5 @types/node@20 @webgpu/types >/dev/null
[ ! -e node_modules/tsx ] || { echo "pack: tsx was installed: the package must not need a transpiler at run time" >&2; exit 1; }

best_of_3() {
  local best=999999 t0 t1 ms
  for _ in 1 2 3; do
    t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 )); [ "$ms" -lt "$best" ] && best=$ms
  done
  echo "$best"
}
echo "pack: statcell --help answered in $(best_of_3 node_modules/.bin/statcell --help) ms, $(best_of_3 npx --no-install statcell --help) ms through npx (best of 3)"

npx --no-install statcell demo --cells 24 --size 32,24 --channels 4,8,16 --latent 4 --epochs 1 --batch 8 --backend wasm 2>&1 | tail -n 3
[ -s report/index.html ] || { echo "pack: statcell demo wrote no report/index.html" >&2; exit 1; }

cat > use.ts <<'TS'
import { compileModelFile, parameterCount, openSplit, train, type CellSource, type TrainOptions } from 'statcell';
const m = compileModelFile('node_modules/statcell/models/reference2d.vae');
const n: number = parameterCount(m);
console.log(`library: reference2d has ${n} parameters`);
// Training from the library: a manifest's split as the trainer's cells (type-checked only).
export const cellsOf = (manifest: string): CellSource => openSplit(manifest, m, 'train');
export const start = (o: TrainOptions) => train(o);
TS
npx --no-install tsc --noEmit --strict --module nodenext --moduleResolution nodenext --target es2022 --skipLibCheck false --types node,@webgpu/types use.ts
echo "pack: the library's types check"
