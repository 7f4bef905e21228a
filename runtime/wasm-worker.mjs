// A worker thread of the Wasm backend (runtime/wasm-threads.ts): its own instance of the shared-
// memory kernels, blocked in Atomics.wait until the main thread posts a generation of calls.
// Plain JavaScript so Node can start it without a TypeScript loader. The same file runs as a
// Node worker_threads worker (its data in workerData) and as a browser module Worker started
// from the explorer's model worker (its data in the first message).
const isNode = typeof process !== 'undefined' && !!process.versions?.node;
const wt = isNode ? await import('node:worker_threads') : null;
const workerData = wt ? wt.workerData : await new Promise((ok) => self.addEventListener('message', (e) => ok(e.data), { once: true }));
const ready = () => (wt ? wt.parentPort.postMessage('ready') : self.postMessage('ready'));

const { module, memory, ctl, cmd, slot, slotFloats, names, tables } = workerData;
const i32 = new Int32Array(ctl);
const f64 = new Float64Array(cmd, slot * slotFloats * 8, slotFloats);
const { exports } = new WebAssembly.Instance(module, {
  env: {
    memory,
    abort: (_m, _f, line, col) => { throw new Error(`wasm: kernel aborted at kernels ${line}:${col} (worker ${slot + 1})`); },
    seed: () => 0,
    trace: () => {},
  },
});
// The conv tables live in static memory: give this thread its own (kernels/conv/kernel.as.ts).
exports.conv_tables(tables);
const fns = names.map((n) => exports[n]);
ready();

// ctl: [0] generation (−1: quit), [1] pieces pending, [2] error flag, [3] error length, then the
// first error's text (UTF-16) at ERR_AT (runtime/wasm-threads.ts).
const ERR_AT = 16;
const ERR_CHARS = 512;
// Test aid (test/node/pool.test.ts): on this launch, hang without counting the piece done.
const stallAt = workerData.stallAt ?? 0;
let launches = 0;
let gen = 0;
for (;;) {
  // A return from Atomics.wait is not a new generation: a notify can come while the generation is
  // unchanged (another waiter's wake-up, a watchdog, destroy() racing). Running the piece again
  // there counted it done twice — the pending count went to −1 (a hang: the main thread waits for
  // 0, this worker for a generation) or reached 0 while another worker still ran. So wait until
  // the generation actually differs from the one last run.
  let now;
  while ((now = Atomics.load(i32, 0)) === gen) Atomics.wait(i32, 0, gen);
  gen = now;
  if (gen < 0) break;
  if (++launches === stallAt) {
    while (Atomics.load(i32, 0) >= 0) Atomics.wait(i32, 0, Atomics.load(i32, 0), 50);
    break;
  }
  try {
    // Slot: count, then per call: function index, argument count, arguments.
    const n = f64[0];
    for (let c = 0, p = 1; c < n; c++) {
      const fn = fns[f64[p]];
      const argc = f64[p + 1];
      fn(...f64.subarray(p + 2, p + 2 + argc));
      p += 2 + argc;
    }
  } catch (e) {
    // The message goes through shared memory: the main thread is blocked and reads no messages.
    if (Atomics.compareExchange(i32, 2, 0, 1) === 0) {
      const msg = String(e).slice(0, ERR_CHARS);
      const u16 = new Uint16Array(ctl, ERR_AT, ERR_CHARS);
      for (let c = 0; c < msg.length; c++) u16[c] = msg.charCodeAt(c);
      Atomics.store(i32, 3, msg.length);
    }
  } finally {
    // Always count this piece done, or the main thread would wait forever.
    if (Atomics.sub(i32, 1, 1) === 1) Atomics.notify(i32, 1);
  }
}
