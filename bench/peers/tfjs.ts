// Peer: TensorFlow.js with its Wasm backend (XNNPACK kernels, SIMD build).
//
// In Node, tfjs-backend-wasm never uses its threaded build (its WASM_HAS_MULTITHREAD_SUPPORT
// flag is false under Node), so this is single-threaded; we still set the thread count to 1 and
// report what the backend says. Its kernels are channels-last: tensors are NHWC, filters HWIO.
// The FLOPs are the same as our NCHW layers.
//   fwd: Conv2D.   dx: Conv2DBackpropInput (tf.conv2dTranspose).
//   dw: the wasm backend has no Conv2DBackpropFilter, so it runs as the forward conv it is
//       equivalent to: x viewed [Ci, H, W, B] convolved with dy viewed [OH, OW, B, Co] at
//       dilation = stride → [Ci, K, K, Co]. Inputs are laid out that way before timing.

import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { Engine, Outcome, Task, TimerOptions } from '../common.ts';
import { convOut, errMessage, fill, taskFlops, taskIO, timeIt } from '../common.ts';

type Tf = typeof import('@tensorflow/tfjs-core');
type TfTensor = import('@tensorflow/tfjs-core').Tensor;

export async function openTfjs(): Promise<Engine> {
  const tf: Tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  // In Node the Emscripten loader reads the .wasm from this folder through fs.
  const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/';
  wasm.setWasmPaths(dist);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend failed to initialise');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = wasm.getThreadsCount();
  const version = tf.version_core;

  const t4 = (shape: number[], seed: number) => tf.tensor(fill(shape.reduce((a, b) => a * b, 1), seed), shape) as TfTensor;

  function build(task: Task): { run: () => void; inputs: TfTensor[] } {
    if (task.kind === 'matmul') {
      const a = t4([task.M, task.K], 1);
      const b = t4([task.K, task.N], 2);
      return { inputs: [a, b], run: () => tf.matMul(a, b).dispose() };
    }
    const { B, Ci, H, W, Co, K, stride: s, pad: p } = task.layer;
    const [oh, ow] = convOut(task.layer);
    const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
    if (task.pass === 'fwd') {
      const x = t4([B, H, W, Ci], 1) as import('@tensorflow/tfjs-core').Tensor4D;
      const w = t4([K, K, Ci, Co], 2) as import('@tensorflow/tfjs-core').Tensor4D;
      return { inputs: [x, w], run: () => tf.conv2d(x, w, s, padding).dispose() };
    }
    if (task.pass === 'dx') {
      const dy = t4([B, oh, ow, Co], 1) as import('@tensorflow/tfjs-core').Tensor4D;
      const w = t4([K, K, Ci, Co], 2) as import('@tensorflow/tfjs-core').Tensor4D;
      return { inputs: [dy, w], run: () => tf.conv2dTranspose(dy, w, [B, H, W, Ci], s, padding).dispose() };
    }
    const xt = t4([Ci, H, W, B], 1) as import('@tensorflow/tfjs-core').Tensor4D;
    const dyt = t4([oh, ow, B, Co], 2) as import('@tensorflow/tfjs-core').Tensor4D;
    const dw = () => tf.conv2d(xt, dyt, 1, padding, 'NHWC', s);
    const probe = dw();
    const got = probe.shape.join(',');
    probe.dispose();
    if (got !== [Ci, K, K, Co].join(',')) throw new Error(`tfjs: the dilated-conv weight gradient gave [${got}], not [${Ci},${K},${K},${Co}]`);
    return { inputs: [xt, dyt], run: () => dw().dispose() };
  }

  /** One computation in our layouts: transposes in and out of NHWC / HWIO around `build`'s ops. */
  async function compute(task: Task, data: Float32Array[]): Promise<Float32Array> {
    const { inputs, output } = taskIO(task);
    const ts = data.map((d, i) => tf.tensor(d, inputs[i]));
    const T = (t: TfTensor, perm: number[]) => tf.transpose(t, perm);
    const result = tf.tidy(() => {
      if (task.kind === 'matmul') return tf.matMul(ts[0] as import('@tensorflow/tfjs-core').Tensor2D, ts[1] as import('@tensorflow/tfjs-core').Tensor2D);
      const { B, Ci, H, W, stride: s, pad: p } = task.layer;
      const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
      const nhwc = (t: TfTensor) => T(t, [0, 2, 3, 1]) as import('@tensorflow/tfjs-core').Tensor4D;
      const hwio = (t: TfTensor) => T(t, [2, 3, 1, 0]) as import('@tensorflow/tfjs-core').Tensor4D;
      if (task.pass === 'fwd') return T(tf.conv2d(nhwc(ts[0]), hwio(ts[1]), s, padding), [0, 3, 1, 2]);
      if (task.pass === 'dx') return T(tf.conv2dTranspose(nhwc(ts[0]), hwio(ts[1]), [B, H, W, Ci], s, padding), [0, 3, 1, 2]);
      const xt = T(ts[0], [1, 2, 3, 0]) as import('@tensorflow/tfjs-core').Tensor4D; // [Ci, H, W, B]
      const dyt = T(ts[1], [2, 3, 0, 1]) as import('@tensorflow/tfjs-core').Tensor4D; // [OH, OW, B, Co]
      return T(tf.conv2d(xt, dyt, 1, padding, 'NHWC', s), [3, 0, 1, 2]); // [Ci,K,K,Co] → [Co,Ci,K,K]
    });
    const got = result.shape.join(',');
    const out = (await result.data()) as Float32Array;
    result.dispose();
    ts.forEach((t) => t.dispose());
    if (got !== output.join(',')) throw new Error(`tfjs: got shape [${got}], expected [${output.join(',')}]`);
    return out;
  }

  return {
    name: 'tfjs-wasm',
    compute,
    describe: () => `@tensorflow/tfjs-backend-wasm ${version}, XNNPACK, SIMD ${simd ? 'on' : 'off'}, ${threads} thread(s)`,
    async run(task: Task, timer: TimerOptions): Promise<Outcome> {
      let built: ReturnType<typeof build> | null = null;
      try {
        built = build(task);
        const timing = await timeIt(built.run, taskFlops(task), timer);
        const note = task.kind === 'conv' && task.pass === 'dw' ? 'as dilated forward conv (no Conv2DBackpropFilter in tfjs-wasm)' : undefined;
        return { ok: true, timing, note };
      } catch (e) {
        return { ok: false, reason: errMessage(e) };
      } finally {
        built?.inputs.forEach((t) => t.dispose());
      }
    },
  };
}
