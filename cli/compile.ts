// `statcell compile` (layer table, parameter counts, planned memory, IR / WGSL dumps) and
// `statcell run` (one entry point on tensors from a safetensors file).

import { readBoundedSync, writeAtomic } from '../data/files.ts';
import { parameterCount } from '../compiler/index.ts';
import type { CompiledModel, TrainGraph } from '../compiler/model.ts';
import { DiagnosticError } from '../dsl/diagnostics.ts';
import { parsePrecision } from '../compiler/precision.ts';
import { lower, memoryStats, trafficStats } from '../compiler/plan.ts';
import { printIr, printWgsl } from '../compiler/print.ts';
import { fmtShape } from '../kernels/types.ts';
import type { Backend } from '../runtime/backend.ts';
import { ModelRuntime } from '../session/model.ts';
import { asFloat64, MAX_SAFETENSORS_BYTES, parseSafetensors, writeSafetensors, type SafeTensors } from '../runtime/safetensors.ts';
import { log } from './options.ts';

const n = (x: number) => x.toLocaleString('en-US');
const mib = (elements: number) => `${((elements * 4) / 2 ** 20).toFixed(1)} MiB`;

export interface CompileReport {
  text: string;
  total: number;
}

/** The table `statcell compile` prints; `emit` adds the lowered program of the training step. */
export function compileReport(model: CompiledModel, batch: number, emit?: 'ir' | 'wgsl', precisionName = 'f32'): CompileReport {
  const precision = parsePrecision(precisionName);
  const out: string[] = [`model ${model.name}  (${Object.entries(model.config).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')})`, ''];
  // A model without a training step (inference only) is described by its entries.
  const train = trainStepOf(model, batch);
  const steps = train ? ['train', ...model.entryNames] : model.entryNames;
  const layers = train ? (train.layers ?? []) : [...new Map(model.entryNames.flatMap((e) => model.program(e, batch).graph.layers ?? []).map((l) => [l.path, l])).values()];
  const w = Math.max(...layers.map((l) => l.path.length), 10);
  out.push(`${'layer'.padEnd(w)}  ${'kind'.padEnd(14)}  ${'output'.padEnd(22)}  params`);
  for (const l of layers) out.push(`${l.path.padEnd(w)}  ${l.layer.padEnd(14)}  ${fmtShape(l.output).padEnd(22)}  ${n(l.params)}`);
  // Totals per block instance (the owner of each tensor: enc.down0, dec.fc, …), each with the
  // instances inside it, then per top-level instance of the model (enc, dec, or the model's own).
  const owners = [...new Set(model.tensors.map((t) => t.owner))];
  const within = (o: string) => (x: string) => x === o || x.startsWith(`${o}.`);
  const tops = [...new Set(owners.map((o) => o.split('.')[0]))];
  const blocks = [...new Set(owners.flatMap((o) => o.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))))];
  out.push('', 'parameters per block (with the blocks inside it):');
  for (const o of blocks) out.push(`  ${o.padEnd(w)}  ${n(parameterCount(model, within(o)))}`);
  const total = parameterCount(model);
  out.push('', `${tops.map((t) => `${t} ${n(parameterCount(model, within(t)))}`).join('  ')}  total ${n(total)} parameters`);
  const rounding = precision === 'f16-storage' ? '; --precision f16-storage: activations rounded to binary16 in float32 buffers, the rounding fused where it can be' : '';
  out.push('', `planned memory at batch ${batch} (float32; peak with buffer reuse vs. every tensor held), launches and bytes read + written (each operand once per launch), fused vs. unfused${rounding}:`);
  if (!train) out.push(`  (model ${model.name} has no training step: its entries only)`);
  const programs: [string, ReturnType<typeof lower>, ReturnType<typeof lower>][] = steps.map((e) => {
    return [e === 'train' ? 'train step' : e, model.program(e, batch, true, precision).program, model.program(e, batch, false, precision).program];
  });
  for (const [name, p, unfused] of programs) {
    const s = memoryStats(p);
    const [t, u] = [trafficStats(p), trafficStats(unfused)];
    out.push(`  ${name.padEnd(12)} ${mib(s.planned).padStart(12)} planned   ${mib(s.unplanned).padStart(12)} without reuse   ${t.launches} launches (${u.launches} unfused)   ${mib(t.bytes / 4)} moved (${mib(u.bytes / 4)})`);
  }
  if (emit) out.push('', emit === 'ir' ? printIr(programs[0][1]) : printWgsl(programs[0][1]));
  return { text: out.join('\n'), total };
}

/** The model's training step, or undefined for a model that declares none (SC5001). */
function trainStepOf(model: CompiledModel, batch: number): TrainGraph | undefined {
  try {
    return model.trainStep(batch);
  } catch (e) {
    if (e instanceof DiagnosticError && e.diagnostics[0]?.code === 'SC5001') return undefined;
    throw e;
  }
}

/**
 * A safetensors file named on the command line: a regular file only (a FIFO would block, /dev/zero
 * fill memory), within MAX_SAFETENSORS_BYTES; every error names the file.
 */
function readTensorsFile(file: string): SafeTensors {
  try {
    return parseSafetensors(readBoundedSync(file, MAX_SAFETENSORS_BYTES));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

const FLOAT_DTYPES = ['F64', 'F32', 'F16', 'BF16'];

/** The values, if every one is finite; else an error naming the file, the tensor and the first bad value. */
function finite(v: Float32Array, file: string, name: string): Float32Array {
  const i = v.findIndex((x) => !Number.isFinite(x));
  if (i >= 0) throw new Error(`${file}: tensor '${name}' holds ${v[i]} at element ${i}: every value must be finite`);
  return v;
}

/**
 * Runs one entry point. Weights are named as in test/golden/README.md (a `param/` or
 * `state_after_train/` prefix is accepted); inputs by the entry's input names.
 */
export async function runEntry(model: CompiledModel, backend: Backend, opts: { weights: string; entry: string; input?: string; out: string; iteration?: number; batch?: number }): Promise<string[]> {
  const w = readTensorsFile(opts.weights);
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map(model.tensors.map((t) => [t.name, t.shape]));
  for (const [stored, t] of w.tensors) {
    const name = stored.replace(/^param\//, '');
    // The model's shape, not only its number of values (which the runtime checks): a [2, 8] weight is not an [8, 2] one.
    const want = shapes.get(name);
    if (want && t.data.length === want.reduce((a, b) => a * b, 1) && want.join() !== t.shape.join()) throw new Error(`${opts.weights}: tensor '${stored}' is ${fmtShape(t.shape)}, the model's is ${fmtShape(want)}`);
    tensors.set(name, finite(Float32Array.from(asFloat64(t, stored)), opts.weights, stored));
  }
  const ignored = [...w.tensors.keys()].filter((k) => !shapes.has(k.replace(/^param\//, '')));
  if (ignored.length) log(`warning: ${opts.weights}: ${ignored.length} tensor(s) the model does not have, ignored: ${ignored.slice(0, 5).join(', ')}${ignored.length > 5 ? ', …' : ''}`);
  const rt = new ModelRuntime(backend, model);
  try {
    rt.writeAll(tensors, opts.weights);
    const entry = model.entry(opts.entry, 1);
    const takes = entry.inputs.map((i) => `${i.name} ${fmtShape(i.shape)}`).join(', ');
    if (!opts.input && entry.inputs.length) throw new Error(`statcell run: the ${opts.entry} entry takes ${takes} (any batch): give them in --input <file.safetensors>`);
    const inp = opts.input ? readTensorsFile(opts.input) : { tensors: new Map() };
    const first = entry.inputs[0];
    const given = first && inp.tensors.get(first.name);
    if (first && !given) throw new Error(`${opts.input}: no tensor '${first.name}' (the ${opts.entry} entry takes ${takes} with any batch)`);
    // Its first size is the batch: a tensor of another rank has none to give.
    if (given && given.shape.length !== first.shape.length) throw new Error(`${opts.input}: '${first.name}' has shape ${fmtShape(given.shape)}, the ${opts.entry} entry takes ${takes} with any batch`);
    // The batch is the inputs'; an entry without inputs (a generator) runs --batch items.
    const batch = given ? given.shape[0] : (opts.batch ?? 1);
    const feeds: Record<string, Float32Array> = {};
    for (const i of model.entry(opts.entry, batch).inputs) {
      const t = inp.tensors.get(i.name);
      if (!t) throw new Error(`${opts.input}: no tensor '${i.name}' for the ${opts.entry} entry`);
      if (t.shape.join() !== i.shape.join()) throw new Error(`${opts.input}: '${i.name}' has shape ${fmtShape(t.shape)}, the entry takes ${fmtShape(i.shape)}`);
      // Integers would be taken as they are: uint8 pixels as 0–255 where the model was trained on 0–1.
      if (!FLOAT_DTYPES.includes(t.dtype)) throw new Error(`${opts.input}: '${i.name}' is ${t.dtype}; give inputs as floats (F32, F64, F16 or BF16), images scaled as in training (uint8 ÷ 255, uint16 ÷ 65535)`);
      feeds[i.name] = finite(Float32Array.from(asFloat64(t, i.name)), opts.input!, i.name);
    }
    const unused = [...inp.tensors.keys()].filter((k) => !feeds[k]);
    if (unused.length) log(`warning: ${opts.input}: tensor(s) the ${opts.entry} entry does not take, ignored: ${unused.join(', ')}`);
    if (given && opts.batch !== undefined && opts.batch !== batch) throw new Error(`statcell run: --batch ${opts.batch}, but the inputs hold a batch of ${batch}; --batch is for an entry without inputs`);
    const shapes = new Map(rt.outputShapes(opts.entry, batch));
    // A generator whose outputs do not grow with B (fixed shapes) cannot run --batch items: said, not ignored.
    if (!given && opts.batch !== undefined && opts.batch !== 1 && [...shapes].every(([k, sh]) => sh.join() === (new Map(rt.outputShapes(opts.entry, 1)).get(k) ?? []).join()))
      throw new Error(`statcell run: the ${opts.entry} entry's outputs have fixed shapes (${[...shapes].map(([k, sh]) => `${k} ${fmtShape(sh)}`).join(', ')}), not a batch of --batch ${opts.batch}`);
    const res = await rt.run(opts.entry, feeds, batch, opts.iteration ?? 0);
    const outT: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [k, v] of Object.entries(res)) outT[k] = { shape: [...(shapes.get(k) ?? [v.length])], data: v };
    writeAtomic(opts.out, writeSafetensors(outT, { model: model.name, entry: opts.entry }));
    return Object.keys(outT);
  } finally {
    rt.destroy();
  }
}
