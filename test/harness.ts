// One suite, every device (as jax-js does it): each device test exists once per device, in a
// suite named after it (`conv > webgpu > …`), so a failure names its device. `forEachDevice`
// registers those suites at collection time, from the device names alone; a device is opened
// when its first test runs (once per test file) and compared there with the float64 oracle.
// In CI a missing WebGPU adapter fails the WebGPU tests; elsewhere they are skipped with a warning.

import { beforeEach, describe, expect, inject, test } from 'vitest';
import type { Backend } from '../runtime/backend.ts';
import { openWebGpu } from '../runtime/device.ts';
import { Eager, type Tensor } from '../runtime/tensor.ts';
import { WasmBackend } from '../runtime/wasm.ts';
import { oracle, oracleTensor, type OracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import type { Attrs, Emitter, Shape } from '../kernels/types.ts';
import { fmtShape, numel } from '../kernels/types.ts';
import { rng } from './rng.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    ci: boolean;
    /** Comma-separated subset of devices to test (STATCELL_TEST_DEVICES), empty for all. */
    devices: string;
  }
}

/** Every device the suites know, in the order they run. */
export const DEVICE_NAMES = ['wasm', 'webgpu'] as const;
export type DeviceName = (typeof DEVICE_NAMES)[number];

export interface TestDevice {
  readonly name: DeviceName;
  readonly eager: Eager;
}

/** The devices this run tests: STATCELL_TEST_DEVICES (inject('devices')), else all of them. */
export function deviceNames(): DeviceName[] {
  const only = inject('devices');
  if (!only) return [...DEVICE_NAMES];
  const asked = only.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = asked.filter((n) => !(DEVICE_NAMES as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`STATCELL_TEST_DEVICES names unknown devices: ${unknown.join(', ')} (known: ${DEVICE_NAMES.join(', ')})`);
  return DEVICE_NAMES.filter((n) => asked.includes(n));
}

const openedDevices = new Map<DeviceName, Promise<TestDevice | null>>();

/**
 * Opens a device once (per test file). Null when WebGPU cannot be opened outside CI (a warning
 * says why, once); in CI that is an error, so every WebGPU test fails with it.
 */
export function openDevice(name: DeviceName): Promise<TestDevice | null> {
  let p = openedDevices.get(name);
  if (!p) {
    p = (async (): Promise<TestDevice | null> => {
      if (name === 'wasm') return { name, eager: new Eager(await WasmBackend.create()) };
      try {
        return { name, eager: new Eager(await openWebGpu(true)) };
      } catch (e) {
        if (inject('ci')) throw new Error(`CI is set but WebGPU could not be opened: ${(e as Error).message}`);
        console.warn(`WebGPU tests skipped: ${(e as Error).message}`);
        return null;
      }
    })();
    openedDevices.set(name, p);
  }
  return p;
}

/** The devices this run tests that could be opened, for checks that compare devices with each other. */
export async function devices(): Promise<TestDevice[]> {
  const list: TestDevice[] = [];
  for (const name of deviceNames()) {
    const d = await openDevice(name);
    if (d) list.push(d);
  }
  return list;
}

/** A device known by name at collection time, opened by the time its tests run. */
class LazyDevice implements TestDevice {
  opened: TestDevice | null = null;
  constructor(readonly name: DeviceName) {}
  get eager(): Eager {
    if (!this.opened) throw new Error(`harness: the ${this.name} device is opened when its tests run; use it inside test(), not while the suite is collected`);
    return this.opened.eager;
  }
}

/**
 * Registers the tests `fn` declares once per device: `describe('wasm', …)`, `describe('webgpu', …)`
 * (those of STATCELL_TEST_DEVICES only). Use the device inside the tests: it is opened before the
 * first of them runs. Without WebGPU they are skipped (with a warning), or fail in CI.
 */
export function forEachDevice(fn: (d: TestDevice) => void): void {
  describe.each(deviceNames())('%s', (name) => deviceSuite(name, fn));
}

/** As forEachDevice, for tests of one device only (`describe('wasm', …)`; none when STATCELL_TEST_DEVICES leaves it out). */
export function onDevice(name: DeviceName, fn: (d: TestDevice) => void): void {
  if (deviceNames().includes(name)) describe(name, () => deviceSuite(name, fn));
}

function deviceSuite(name: DeviceName, fn: (d: TestDevice) => void): void {
  const d = new LazyDevice(name);
  beforeEach(async (ctx) => {
    d.opened ??= await openDevice(name);
    if (!d.opened) ctx.skip(`${name} could not be opened (see the warning above)`);
  });
  fn(d);
}

export const backendOf = (d: TestDevice): Backend => d.eager.backend;

/** Deterministic pseudo-random numbers (mulberry32) for test inputs (test/rng.ts). */
export { rng };

export function randn(shape: Shape, seed: number, scale = 1): OracleTensor {
  const r = rng(seed);
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = scale * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return oracleTensor(shape, data);
}

/** ‖a − b‖ / ‖b‖, with ‖b‖ floored so that all-zero references compare absolutely. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-6);
}

export const upload = (d: TestDevice, t: OracleTensor): Tensor => d.eager.upload(t.shape, t.data);

/** Runs an op on a device and returns its outputs next to the oracle's. */
export async function runBoth(d: TestDevice, op: string, inputs: OracleTensor[], attrs: Attrs = {}) {
  const want = oracle.call(op, inputs, attrs);
  const outs = d.eager.call(op, inputs.map((t) => upload(d, t)), attrs);
  const got = await Promise.all(outs.map((t) => d.eager.read(t)));
  return { got, want };
}

/**
 * Gradient of L = Σ_k Σ w_k ⊙ out_k with respect to every input, by the op's gradient rule on
 * the given emitter. `weights` are fixed random cotangents.
 */
export function gradByRule<T>(em: Emitter<T>, op: string, inputs: T[], weights: (T | null)[], attrs: Attrs): (T | null)[] {
  const def = getOp(op);
  if (!def.grad) throw new Error(`${op} has no gradient rule`);
  const outputs = em.call(op, inputs, attrs);
  return def.grad(em, { inputs, outputs, dOutputs: weights, attrs });
}

/** Central finite differences of L = Σ w ⊙ out[outIndex..] w.r.t. input `which`, in float64. */
export function finiteDiff(op: string, inputs: OracleTensor[], weights: (OracleTensor | null)[], attrs: Attrs, which: number, h = 1e-6, maxProbes = 64): { idx: number[]; fd: number[] } {
  const loss = (ins: OracleTensor[]) =>
    oracle.call(op, ins, attrs).reduce((acc, o, k) => {
      const w = weights[k];
      if (!w) return acc;
      let s = 0;
      for (let i = 0; i < o.data.length; i++) s += o.data[i] * w.data[i];
      return acc + s;
    }, 0);
  const n = inputs[which].data.length;
  const stride = Math.max(1, Math.floor(n / maxProbes));
  const idx: number[] = [];
  const fd: number[] = [];
  for (let i = 0; i < n; i += stride) {
    const plus = inputs.map((t) => ({ shape: t.shape, data: t.data.slice() }));
    const minus = inputs.map((t) => ({ shape: t.shape, data: t.data.slice() }));
    plus[which].data[i] += h;
    minus[which].data[i] -= h;
    idx.push(i);
    fd.push((loss(plus) - loss(minus)) / (2 * h));
  }
  return { idx, fd };
}

export const describeShapes = (ts: OracleTensor[]): string => ts.map((t) => fmtShape(t.shape)).join(' ');

export interface OpCase {
  /** Inputs in float64; gradient checks probe every input listed in `diff` (default: all). */
  inputs: OracleTensor[];
  attrs?: Attrs;
  diff?: number[];
  /** Outputs that carry a cotangent in the gradient checks (default: all). */
  cotangents?: number[];
  /** Relative tolerance for device vs oracle (float32 vs float64). */
  tol?: number;
}

/**
 * The standard check of one op (tinygrad's helper_test_op): the oracle's gradient rule agrees
 * with central finite differences (float64 only, one test per case); and on each device (one
 * test per device and case) forward and gradients agree with the float64 oracle.
 */
export function opSuite(op: string, cases: OpCase[]): void {
  describe(op, () => {
    const def = getOp(op);
    const checks = cases.map((c, ci) => {
      const attrs = c.attrs ?? {};
      const outs = oracle.call(op, c.inputs, attrs);
      const weights = outs.map((o, k) => (!c.cotangents || c.cotangents.includes(k) ? randn(o.shape, 1000 + 17 * ci + k) : null));
      const diff = def.grad ? (c.diff ?? c.inputs.map((_, i) => i)) : [];
      let g64: (OracleTensor | null)[] | undefined;
      /** The oracle's gradients, computed once for all devices. */
      const oracleGrads = () => (g64 ??= def.grad && diff.length ? gradByRule(oracle, op, c.inputs, weights, attrs) : []);
      return { c, label: `${describeShapes(c.inputs)} ${JSON.stringify(c.attrs ?? {})}`, attrs, weights, diff, oracleGrads };
    });

    for (const { c, label, attrs, weights, diff } of checks) {
      if (!def.grad || !diff.length) continue;
      test(`reference gradient = finite differences: ${label}`, () => {
        const g = gradByRule(oracle, op, c.inputs, weights, attrs);
        for (const i of diff) {
          const { idx, fd } = finiteDiff(op, c.inputs, weights, attrs, i);
          const gi = g[i];
          expect(gi, `gradient of input ${i}`).toBeTruthy();
          const sel = idx.map((j) => gi!.data[j]);
          expect(relErr(sel, fd), `input ${i}`).toBeLessThan(1e-5);
        }
      });
    }

    forEachDevice((d) => {
      for (const { c, label, attrs, weights, diff, oracleGrads } of checks) {
        test(`forward and gradients = float64 oracle: ${label}`, async () => {
          const g64 = oracleGrads();
          const { got, want } = await runBoth(d, op, c.inputs, attrs);
          for (const [k, w] of want.entries()) expect(relErr(got[k], w.data), `${d.name} output ${k}`).toBeLessThan(c.tol ?? 1e-5);
          if (!g64.length) return;
          const g = gradByRule(d.eager, op, c.inputs.map((t) => upload(d, t)), weights.map((w) => w && upload(d, w)), attrs);
          for (const i of diff) {
            const got = await d.eager.read(g[i]!);
            expect(relErr(got, g64[i]!.data), `${d.name} gradient of input ${i}`).toBeLessThan(c.tol ?? 1e-5);
          }
        });
      }
    });
  });
}
