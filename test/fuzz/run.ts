// Runs the fuzzer: `npx tsx test/fuzz/run.ts --n 100000 --seed 1 [--from 0] [--timeout 5000] [--mem 1024]`.
// The inputs are compiled in a child process, watched from here: an input that runs past the
// time limit or takes the child past the memory limit (V8's old space, --max-old-space-size)
// kills it, is reported, and the next child goes on from the input after. Reports each
// uncaught exception (the input is written to $TMPDIR/statcell-fuzz-failures/), the slowest input and peak RSS.

import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzCase, realModels, runCase } from './fuzz.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const n = arg('n', 10000);
const seed = arg('seed', 1);
const from = arg('from', 0);
const timeoutMs = arg('timeout', 5000);
const memMb = arg('mem', 1024);

type Msg = { t: 'start'; i: number } | { t: 'done'; i: number; ok: boolean; error?: string; ms: number; rss: number };

if (process.argv.includes('--child')) {
  const models = realModels();
  // One compile before the clock starts: loading and compiling the compiler's own code takes
  // seconds on a busy machine, and is not the first input's fault.
  runCase(models, { kind: 'mutation', file: 'models/target2d.vae', text: models.get('models/target2d.vae')! });
  for (let i = from; i < n; i++) {
    const c = fuzzCase(models, seed, i);
    process.send!({ t: 'start', i } satisfies Msg);
    const t0 = performance.now();
    const o = runCase(models, c);
    const ms = performance.now() - t0;
    process.send!({ t: 'done', i, ok: o.ok, error: o.ok ? undefined : o.error, ms, rss: process.memoryUsage().rss } satisfies Msg);
  }
  process.disconnect();
} else {
  const models = realModels();
  const outDir = join(tmpdir(), 'statcell-fuzz-failures');
  const failures: { i: number; why: string }[] = [];
  let slowest = { i: -1, ms: 0 };
  let peakRss = 0;
  let done = 0;
  const t0 = Date.now();
  const save = (i: number, why: string): void => {
    failures.push({ i, why });
    mkdirSync(outDir, { recursive: true });
    const c = fuzzCase(models, seed, i);
    writeFileSync(join(outDir, `seed${seed}-${i}.vae`), c.text);
    console.log(`FAIL #${i} (${c.kind}, as ${c.file}): ${why.split('\n')[0]}`);
  };
  const runFrom = (start: number): Promise<number> =>
    new Promise((resolve) => {
      const child = fork(import.meta.filename, ['--child', '--n', String(n), '--seed', String(seed), '--from', String(start)], {
        execArgv: [...process.execArgv, `--max-old-space-size=${memMb}`],
        stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      });
      let current = start;
      let timer: NodeJS.Timeout | undefined;
      let killedFor: string | undefined;
      child.on('message', (m: Msg) => {
        if (m.t === 'start') {
          current = m.i;
          timer = setTimeout(() => { killedFor = `over ${timeoutMs} ms`; child.kill('SIGKILL'); }, timeoutMs);
        } else {
          clearTimeout(timer);
          done++;
          peakRss = Math.max(peakRss, m.rss);
          if (m.ms > slowest.ms) slowest = { i: m.i, ms: m.ms };
          if (!m.ok) save(m.i, m.error!);
          if (done % 1000 === 0)
            console.log(`${done} inputs, ${failures.length} failures, ${((Date.now() - t0) / 1000).toFixed(0)} s; slowest #${slowest.i} ${slowest.ms.toFixed(0)} ms; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB`);
          current = m.i + 1;
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (current >= n) return resolve(n);
        done++;
        save(current, killedFor ?? `child died (code ${code}, signal ${signal}; out of memory past ${memMb} MB?)`);
        resolve(current + 1);
      });
    });
  let next = from;
  while (next < n) next = await runFrom(next);
  console.log(
    `fuzz: ${done} inputs (seed ${seed}) in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${failures.length} failures; ` +
      `slowest #${slowest.i} ${slowest.ms.toFixed(0)} ms; peak child RSS ${(peakRss / 2 ** 20).toFixed(0)} MB`,
  );
  process.exitCode = failures.length ? 1 : 0;
}
