// Peer: ONNX Runtime Web (onnxruntime-web) with its Wasm backend (MLAS kernels, SIMD), in Node,
// one thread (env.wasm.numThreads = 1). Each task is a one-node ONNX model written here as
// protobuf bytes, so no converter or model file is needed. ONNX Conv is NCHW, as ours.
//   fwd: Conv.   dx: ConvTranspose.
//   dw: ONNX has no weight-gradient op outside its training build, so it runs as the forward
//       conv it is equivalent to: x viewed [Ci, B, H, W] convolved with dy viewed
//       [Co, B, OH, OW] at dilation = stride → [Ci, Co, K, K]. Inputs are laid out that way.
// Each session.run copies its inputs into Wasm memory and the output back out; that copying
// is part of the timing (a few MB per call, small next to the convolutions).

import type { Engine, Outcome, Task, TimerOptions } from '../common.ts';
import { convOut, errMessage, fill, permute, taskFlops, taskIO, timeIt } from '../common.ts';

// --- a minimal protobuf writer: just what ModelProto needs -----------------------------------

const varint = (n: number): number[] => {
  // Sizes only: a negative size means a layer that cannot exist, so say so here.
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`ort model: cannot encode ${n} (a negative or non-integer size)`);
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const tagged = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, n: number) => [...tagged(field, 0), ...varint(n)];
const bytes = (field: number, b: number[]) => [...tagged(field, 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...new TextEncoder().encode(s)]);

const ELEM_FLOAT = 1;
const ATTR_INTS = 7;

/** ValueInfoProto for a float tensor of a fixed shape. */
function valueInfo(name: string, shape: number[]): number[] {
  const dims = shape.flatMap((d) => bytes(1, int(1, d))); // TensorShapeProto.dim { dim_value }
  const tensorType = [...int(1, ELEM_FLOAT), ...bytes(2, dims)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))]; // type { tensor_type }
}

const intsAttr = (name: string, values: number[]) => [...str(1, name), ...int(20, ATTR_INTS), ...values.flatMap((v) => int(8, v))];

interface OnnxNode {
  op: string;
  inputs: { name: string; shape: number[] }[];
  output: { name: string; shape: number[] };
  attrs: Record<string, number[]>;
}

/** ModelProto (IR version 8, default opset 17) with one node, its inputs as graph inputs. */
export function oneNodeModel(n: OnnxNode): Uint8Array {
  const node = [
    ...n.inputs.flatMap((i) => str(1, i.name)),
    ...str(2, n.output.name),
    ...str(3, 'node0'),
    ...str(4, n.op),
    ...Object.entries(n.attrs).flatMap(([k, v]) => bytes(5, intsAttr(k, v))),
  ];
  const graph = [
    ...bytes(1, node),
    ...str(2, 'bench'),
    ...n.inputs.flatMap((i) => bytes(11, valueInfo(i.name, i.shape))),
    ...bytes(12, valueInfo(n.output.name, n.output.shape)),
  ];
  const opset = [...str(1, ''), ...int(2, 17)];
  return new Uint8Array([...int(1, 8), ...str(2, 'statcell-bench'), ...bytes(7, graph), ...bytes(8, opset)]);
}

function nodeFor(task: Task): { node: OnnxNode; note?: string } {
  if (task.kind === 'matmul') {
    const { M, N, K } = task;
    return { node: { op: 'MatMul', inputs: [{ name: 'a', shape: [M, K] }, { name: 'b', shape: [K, N] }], output: { name: 'y', shape: [M, N] }, attrs: {} } };
  }
  const { B, Ci, H, W, Co, K, stride: s, pad: p } = task.layer;
  const [oh, ow] = convOut(task.layer);
  const pads = [p, p, p, p];
  if (task.pass === 'fwd')
    return {
      node: {
        op: 'Conv',
        inputs: [{ name: 'x', shape: [B, Ci, H, W] }, { name: 'w', shape: [Co, Ci, K, K] }],
        output: { name: 'y', shape: [B, Co, oh, ow] },
        attrs: { kernel_shape: [K, K], strides: [s, s], pads },
      },
    };
  if (task.pass === 'dx') {
    const outputPadding = [H - ((oh - 1) * s - 2 * p + K), W - ((ow - 1) * s - 2 * p + K)];
    return {
      node: {
        op: 'ConvTranspose',
        inputs: [{ name: 'dy', shape: [B, Co, oh, ow] }, { name: 'w', shape: [Co, Ci, K, K] }],
        output: { name: 'dx', shape: [B, Ci, H, W] },
        attrs: { kernel_shape: [K, K], strides: [s, s], pads, output_padding: outputPadding },
      },
    };
  }
  return {
    node: {
      op: 'Conv',
      inputs: [{ name: 'xt', shape: [Ci, B, H, W] }, { name: 'dyt', shape: [Co, B, oh, ow] }],
      output: { name: 'dwt', shape: [Ci, Co, K, K] },
      attrs: { kernel_shape: [oh, ow], strides: [1, 1], dilations: [s, s], pads },
    },
    note: 'as dilated forward conv (ONNX has no weight-gradient op)',
  };
}

export async function openOnnx(): Promise<Engine> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  ort.env.logLevel = 'error';
  const version = ort.env.versions?.web ?? 'unknown';
  /** One computation in our layouts; only the weight gradient needs transposes (see above). */
  async function compute(task: Task, data: Float32Array[]): Promise<Float32Array> {
    const { node } = nodeFor(task);
    const { inputs: shapes } = taskIO(task);
    let ins = data;
    if (task.kind === 'conv' && task.pass === 'dw') ins = [permute(data[0], shapes[0], [1, 0, 2, 3]), permute(data[1], shapes[1], [1, 0, 2, 3])];
    const session = await ort.InferenceSession.create(oneNodeModel(node), { executionProviders: ['wasm'] });
    try {
      const feeds: Record<string, import('onnxruntime-web').Tensor> = {};
      node.inputs.forEach((i, k) => (feeds[i.name] = new ort.Tensor('float32', ins[k], i.shape)));
      const out = (await session.run(feeds))[node.output.name];
      const y = out.data as Float32Array;
      // [Ci, Co, K, K] → [Co, Ci, K, K]
      return task.kind === 'conv' && task.pass === 'dw' ? permute(y, node.output.shape, [1, 0, 2, 3]) : y.slice();
    } finally {
      await session.release();
    }
  }

  return {
    name: 'ort-wasm',
    compute,
    describe: () => `onnxruntime-web ${version}, wasm backend (MLAS), SIMD, ${ort.env.wasm.numThreads} thread`,
    async run(task: Task, timer: TimerOptions): Promise<Outcome> {
      let session: import('onnxruntime-web').InferenceSession | null = null;
      try {
        const { node, note } = nodeFor(task);
        session = await ort.InferenceSession.create(oneNodeModel(node), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
        const feeds: Record<string, import('onnxruntime-web').Tensor> = {};
        node.inputs.forEach((i, k) => {
          feeds[i.name] = new ort.Tensor('float32', fill(i.shape.reduce((a, b) => a * b, 1), k + 1), i.shape);
        });
        const s = session;
        const first = await s.run(feeds);
        const got = [...first[node.output.name].dims].join(',');
        if (got !== node.output.shape.join(',')) throw new Error(`ort: ${node.op} gave [${got}], expected [${node.output.shape.join(',')}]`);
        const timing = await timeIt(async () => {
          const out = await s.run(feeds);
          out[node.output.name].dispose();
        }, taskFlops(task), timer);
        return { ok: true, timing, note };
      } catch (e) {
        return { ok: false, reason: errMessage(e) };
      } finally {
        await session?.release();
      }
    },
  };
}
