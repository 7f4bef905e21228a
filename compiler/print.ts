// Text forms of a lowered program for `statcell compile --emit ir|wgsl`.

import { getOp } from '../kernels/registry.ts';
import { fmtShape } from '../kernels/types.ts';
import type { Program } from './plan.ts';

/** One line per launch: `b7 = conv(b1, b3, b4) {stride:2,pad:1} -> [2, 32, 80, 48]`, then the buffers. */
export function printIr(p: Program): string {
  const names = new Map<number, string>();
  for (const [name, b] of p.inputs) names.set(b, name);
  const buf = (b: number) => (names.has(b) ? `%${names.get(b)}` : `b${b}`);
  const lines = p.launches.map((l) => {
    const outShapes = getOp(l.op).shape(l.inShapes, l.attrs);
    const attrs = Object.keys(l.attrs).length ? ` ${JSON.stringify(l.attrs)}` : '';
    const dyn = l.dynamic ? ` dynamic(${Object.keys(l.dynamic).join(', ')})` : '';
    return `${l.outputs.map(buf).join(', ')} = ${l.op}(${l.inputs.map(buf).join(', ')})${attrs}${dyn} -> ${outShapes.map(fmtShape).join(', ')}`;
  });
  const outs = [...p.outputs].map(([name, o]) => `out ${name} = ${buf(o.buffer)} ${fmtShape(o.shape)}`);
  const bufs = p.buffers.map((b, i) => `${buf(i)}: ${b.kind} ${b.elements} floats`);
  return [...lines, '', ...outs, '', ...bufs].join('\n');
}

/**
 * Every distinct compute shader the program runs, labelled with the launches that use it, as core
 * WGSL (no device is open here): a device with `subgroups` runs the subgroup form of the sums.
 */
export function printWgsl(p: Program): string {
  const seen = new Map<string, string[]>();
  p.launches.forEach((l, i) => {
    for (const pass of getOp(l.op).wgsl(l.inShapes, l.attrs).passes) {
      const users = seen.get(pass.code) ?? seen.set(pass.code, []).get(pass.code)!;
      users.push(`#${i} ${l.op} ${l.inShapes.map(fmtShape).join(' ')}`);
    }
  });
  const head = '// core WGSL (a device with the subgroups feature runs the subgroup form of the workgroup sums)';
  return [head, ...[...seen].map(([code, users]) => `// ---- used by ${users.length} launch(es): ${users.slice(0, 3).join('; ')}${users.length > 3 ? '; …' : ''}\n${code}`)].join('\n\n');
}
