// Long stress run of the Wasm thread pool (the CI slice is test/node/pool.test.ts):
//   npx tsx bench/pool-stress.ts [launches=100000] [threads=3] [busy processes=2]
// Launches the pool `launches` times with a spurious wake-up after each, while `busy` processes
// spin on the same cores (so workers get descheduled mid-protocol), and checks every piece ran
// exactly once. Exits 1 on a wrong count or a stall (the watchdog's timeout is 10 s here).

import { spawn } from 'node:child_process';
import { poolHarness } from '../test/node/pool-harness.ts';

const [launches = 100_000, threads = 3, busy = 2] = process.argv.slice(2).map(Number);
const spinners = Array.from({ length: busy }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
const h = await poolHarness(threads, { stallMs: 10_000 });
const t0 = performance.now();
let code = 0;
try {
  for (let r = 1; r <= launches; r++) {
    h.launch();
    h.pool.spuriousWake();
    if (r % 10_000 === 0) process.stderr.write(`${r} launches, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const wrong = h.wrong(launches);
  const s = (performance.now() - t0) / 1000;
  console.log(`${launches} launches on ${threads} threads with ${busy} busy processes: ${s.toFixed(1)} s (${(s / launches * 1e6).toFixed(0)} µs each), ${wrong} wrong values`);
  if (wrong) code = 1;
} catch (e) {
  console.error((e as Error).message);
  code = 1;
} finally {
  h.destroy();
  for (const p of spinners) p.kill();
}
process.exit(code);
