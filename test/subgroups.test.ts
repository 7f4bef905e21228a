// Subgroup reductions (kernels/wgsl.ts, WG_SUM), detected, never assumed. Every op whose
// WGSL sums through wg_sum, forward and backward against the float64 oracle on two devices of
// the same adapter: one with 'subgroups' (where the adapter offers it), one opened without it
// (openWebGpu's `disable`: that device lacks the feature, so a subgroup shader could not even
// compile there). Shapes make the sums span several subgroups and workgroups with ragged tails.
// Like the op suites it runs in Node (Dawn) and in Chromium, and only when STATCELL_TEST_DEVICES
// includes webgpu.

import { describe, expect, inject, test } from 'vitest';
import { backendReason, featureLine, openWebGpu } from '../runtime/device.ts';
import { Eager } from '../runtime/tensor.ts';
import type { WebGpuBackend } from '../runtime/webgpu.ts';
import { oracle, type OracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import { CORE_WGSL, type Attrs } from '../kernels/types.ts';
import { deviceNames, gradByRule, randn, relErr, runBoth, upload, type TestDevice } from './harness.ts';

interface Case {
  op: string;
  inputs: OracleTensor[];
  attrs?: Attrs;
  /** Outputs that carry a cotangent, and inputs whose gradient is checked (none: forward only). */
  cotangents?: number[];
  diff?: number[];
}

/** BatchNorm's inputs x, γ, β, running_mean, running_var; x ~ N(offset, 1.5²). */
const bnInputs = (x: number[], seed: number, offset = 0): OracleTensor[] => {
  const C = [x[1]];
  const t = randn(x, seed);
  t.data.forEach((v, i) => (t.data[i] = 1.5 * v + offset));
  const g = randn(C, seed + 1, 0.1);
  g.data.forEach((v, i) => (g.data[i] = v + 1));
  const rv = randn(C, seed + 4, 0.2);
  rv.data.forEach((v, i) => (rv.data[i] = v + 1));
  return [t, g, randn(C, seed + 2), randn(C, seed + 3), rv];
};
/** batchnorm_grad's inputs: x, dy, the batch mean and invstd (or, eval, running_mean and _var), γ, the mask. */
const bnGradInputs = (x: number[], seed: number, training: boolean): OracleTensor[] => {
  const [xt, g, , rm, rv] = bnInputs(x, seed, 2);
  const [, mean, invstd] = oracle.call('batchnorm', [xt, g, g, rm, rv], { training: true });
  return [xt, randn(x, seed + 9), ...(training ? [mean, invstd] : [rm, rv]), g, randn(x, seed + 10)];
};

// N per channel: 105 (one workgroup, most invocations idle), 17385 (two slices of 8693: neither a
// multiple of 256 nor of any subgroup size); batchnorm_grad masked (relu's gradient folded in)
// and eval; reduce: 64-wide and 256-wide workgroups, one and two
// passes; sn_sigma: K and O above and below 256; sse: 7 partial-sum workgroups, ragged.
const CASES: Case[] = [
  { op: 'batchnorm', inputs: bnInputs([3, 2, 7, 5], 1, 3), attrs: { training: true }, cotangents: [0], diff: [0, 1, 2] },
  { op: 'batchnorm', inputs: bnInputs([5, 3, 57, 61], 2, -4), attrs: { training: true }, cotangents: [0], diff: [0, 1, 2] },
  { op: 'batchnorm_stats', inputs: bnInputs([5, 3, 59, 61], 4, 5).filter((_, i) => i !== 2), attrs: { training: true } },
  { op: 'batchnorm_grad', inputs: bnGradInputs([4, 3, 9, 11], 5, true), attrs: { training: true } },
  { op: 'batchnorm_grad', inputs: bnGradInputs([3, 4, 9, 11], 3, false).slice(0, 5), attrs: { training: false, eps: 1e-3 } },
  { op: 'reduce_sum', inputs: [randn([7, 300], 6)], attrs: { axes: [1] }, diff: [0] },
  { op: 'reduce_sum', inputs: [randn([2, 5000], 7)], attrs: { axes: [1] }, diff: [0] },
  { op: 'reduce_mean', inputs: [randn([4, 3, 2000], 8)], attrs: { axes: [0, 2], keepdims: true }, diff: [0] },
  { op: 'sn_sigma', inputs: [randn([40, 300], 9), randn([40], 10)], cotangents: [0], diff: [0] },
  { op: 'sn_sigma', inputs: [randn([300, 7], 11), randn([300], 12)], cotangents: [0], diff: [0] },
  { op: 'sse', inputs: [randn([3, 5, 41, 43], 13), randn([3, 5, 41, 43], 14)], diff: [0, 1] },
];
const label = (c: Case) => `${c.op} ${c.inputs.map((t) => `[${t.shape.join(', ')}]`).join(' ')} ${JSON.stringify(c.attrs ?? {})}`;

interface Opened {
  backend: WebGpuBackend;
  device: TestDevice;
  /** The WGSL of every shader module this device compiled. */
  compiled: string[];
}

let pair: Promise<{ on: Opened; off: Opened } | null> | undefined;

/** Both devices, opened once. Null (a warning) without WebGPU outside CI; in CI that fails. */
function openPair(): Promise<{ on: Opened; off: Opened } | null> {
  const open = async (disable: 'subgroups'[]): Promise<Opened> => {
    const backend = await openWebGpu(true, { disable });
    const compiled: string[] = [];
    const create = backend.device.createShaderModule.bind(backend.device);
    backend.device.createShaderModule = (d: GPUShaderModuleDescriptor) => (compiled.push(d.code), create(d));
    return { backend, device: { name: 'webgpu', eager: new Eager(backend) }, compiled };
  };
  return (pair ??= (async () => {
    try {
      return { on: await open([]), off: await open(['subgroups']) };
    } catch (e) {
      if (inject('ci')) throw new Error(`CI is set but WebGPU could not be opened: ${(e as Error).message}`);
      console.warn(`WebGPU subgroup tests skipped: ${(e as Error).message}`);
      return null;
    }
  })());
}

test('generators emit subgroupAdd (and `enable subgroups;` first) only for a target with subgroups', () => {
  for (const c of CASES) {
    const shapes = c.inputs.map((t) => t.shape);
    const withSub = getOp(c.op).wgsl(shapes, c.attrs ?? {}, { subgroups: true }).passes.map((p) => p.code);
    const core = getOp(c.op).wgsl(shapes, c.attrs ?? {}, CORE_WGSL).passes.map((p) => p.code);
    const sums = withSub.filter((code) => code.includes('wg_sum('));
    expect(sums.length, label(c)).toBeGreaterThan(0);
    for (const code of sums) expect(code.startsWith('enable subgroups;\n') && code.includes('subgroupAdd('), label(c)).toBe(true);
    for (const code of withSub.filter((code) => !code.includes('wg_sum('))) expect(code, label(c)).not.toMatch(/subgroup/);
    for (const code of core) expect(code, label(c)).not.toMatch(/subgroup/);
    // No target: core WGSL.
    expect(getOp(c.op).wgsl(shapes, c.attrs ?? {}).passes.map((p) => p.code)).toEqual(core);
  }
});

test('featureLine names a feature turned off apart from one the adapter lacks', () => {
  expect(featureLine(['timestamp-query'], ['subgroups'])).toBe('timestamp-query; subgroups off; no shader-f16');
  expect(featureLine(['subgroups', 'timestamp-query'])).toBe('subgroups, timestamp-query; no shader-f16');
});

describe.skipIf(!deviceNames().includes('webgpu'))('webgpu with and without subgroups', () => {
  test('the target follows the device, and `disable` leaves the feature out of the device and says so', async (ctx) => {
    const p = await openPair();
    if (!p) return ctx.skip('WebGPU could not be opened (see the warning above)');
    const { on, off } = p;
    expect(on.backend.target.subgroups).toBe(on.backend.device.features.has('subgroups'));
    expect(off.backend.device.features.has('subgroups')).toBe(false);
    expect(off.backend.target.subgroups).toBe(false);
    if (!on.backend.target.subgroups) return ctx.skip(`the adapter (${on.backend.description}) offers no subgroups`);
    expect(off.backend.disabled).toEqual(['subgroups']);
    expect(backendReason('webgpu', off.backend)).toMatch(/WebGPU features: .*subgroups off/);
    expect(backendReason('webgpu', on.backend)).not.toMatch(/subgroups off|no subgroups/);
  });

  for (const variant of ['on', 'off'] as const) {
    describe(variant === 'on' ? 'subgroups' : 'core WGSL (subgroups disabled)', () => {
      for (const c of CASES) {
        test(`forward${c.diff ? ' and gradients' : ''} = float64 oracle: ${label(c)}`, async (ctx) => {
          const p = await openPair();
          if (!p) return ctx.skip('WebGPU could not be opened (see the warning above)');
          const { backend, device: d, compiled } = p[variant];
          if (variant === 'on' && !backend.target.subgroups) return ctx.skip(`the adapter (${backend.description}) offers no subgroups`);
          const from = compiled.length;
          const attrs = c.attrs ?? {};
          const { got, want } = await runBoth(d, c.op, c.inputs, attrs);
          for (const [k, w] of want.entries()) expect(relErr(got[k], w.data), `output ${k}`).toBeLessThan(1e-5);
          if (c.diff) {
            const outs = oracle.call(c.op, c.inputs, attrs);
            const weights = outs.map((o, k) => (!c.cotangents || c.cotangents.includes(k) ? randn(o.shape, 500 + k) : null));
            const g64 = gradByRule(oracle, c.op, c.inputs, weights, attrs);
            const g = gradByRule(d.eager, c.op, c.inputs.map((t) => upload(d, t)), weights.map((w) => w && upload(d, w)), attrs);
            for (const i of c.diff) expect(relErr(await d.eager.read(g[i]!), g64[i]!.data), `gradient of input ${i}`).toBeLessThan(1e-5);
          }
          // What ran is what the variant says: this case's shapes compiled new shaders.
          const mine = compiled.slice(from);
          expect(mine.length).toBeGreaterThan(0);
          expect(mine.some((code) => code.includes('subgroupAdd('))).toBe(variant === 'on');
        });
      }
    });
  }

  test('subgroup sums give the same bits run to run', async (ctx) => {
    const p = await openPair();
    if (!p) return ctx.skip('WebGPU could not be opened (see the warning above)');
    const { backend, device: d } = p.on;
    if (!backend.target.subgroups) return ctx.skip(`the adapter (${backend.description}) offers no subgroups`);
    for (const c of CASES.filter((c) => ['batchnorm_stats', 'reduce_mean', 'sn_sigma', 'sse'].includes(c.op))) {
      // Fresh uploads each time (batchnorm updates its running statistics in place).
      const a = (await runBoth(d, c.op, c.inputs, c.attrs)).got;
      const b = (await runBoth(d, c.op, c.inputs, c.attrs)).got;
      a.forEach((x, k) => expect(Array.from(b[k]), `${label(c)} output ${k}`).toEqual(Array.from(x)));
    }
  });
});
