// The WebGPU backend's own error path: a shader that does not compile, or a pipeline that cannot
// be created, is an error at the next sync point naming the op, with the compiler's messages at
// their line:col under the WGSL source line; and the device goes on working after it.

import { afterEach, describe, expect, test, vi } from 'vitest';
import { getOp } from '../kernels/registry.ts';
import type { OpDef } from '../kernels/types.ts';
import { formatMessage, type WebGpuBackend } from '../runtime/webgpu.ts';
import { backendOf, onDevice, randn, relErr, runBoth, type TestDevice } from './harness.ts';

/** y = x + an undeclared name, on line 6. */
const BROKEN = [
  '@group(0) @binding(0) var<storage, read> X: array<f32>;',
  '@group(0) @binding(1) var<storage, read_write> Y: array<f32>;',
  '@compute @workgroup_size(64)',
  'fn main(@builtin(global_invocation_id) gid: vec3<u32>) {',
  '    let i = gid.x;',
  '    Y[i] = X[i] + not_declared;',
  '}',
].join('\n');
const LINE = 6;
const COL = BROKEN.split('\n')[LINE - 1].indexOf('not_declared') + 1;
/** The source line and a caret under the column, as the error shows them. */
const SHOWN = `\n  ${LINE} |     Y[i] = X[i] + not_declared;\n    | ${' '.repeat(COL - 1)}^`;

/** A test-only op y = x on [n] with the given shader (entry point `main`, X and Y bound). */
const probe = (name: string, code: string): OpDef => ({
  name,
  shape: (s) => [s[0]],
  float64: (xs) => [xs[0].slice()],
  wgsl: (s) => ({ passes: [{ code, bindings: [0, 1], workgroups: [Math.ceil(s[0][0] / 64), 1, 1] }] }),
  wasm: () => {
    throw new Error(`${name} is a WebGPU test op`);
  },
});

/** Prepares and runs an op on [5] through the backend; what the next sync throws. */
async function failure(d: TestDevice, op: OpDef, between?: (b: WebGpuBackend, x: ReturnType<WebGpuBackend['alloc']>) => void): Promise<Error> {
  const b = backendOf(d) as WebGpuBackend;
  const [x, y] = [b.alloc(5), b.alloc(5)];
  try {
    const launch = b.prepare(op, [[5]], {}, [x], [y]);
    b.execute([launch]);
    between?.(b, x);
    const err = await b.sync().then(
      () => null,
      (e: Error) => e,
    );
    b.release(launch);
    expect(err, 'sync() must reject').toBeInstanceOf(Error);
    return err!;
  } finally {
    b.free(x);
    b.free(y);
  }
}

/** The device still computes correctly, and has nothing left to report. */
async function stillWorks(d: TestDevice) {
  const { got, want } = await runBoth(d, 'relu', [randn([37], 1)]);
  expect(relErr(got[0], want[0].data)).toBeLessThan(1e-6);
  await expect(backendOf(d).sync()).resolves.toBeUndefined();
}

test('a compiler message is shown at its line:col under the source line', () => {
  const code = Array.from({ length: 11 }, (_, i) => `// line ${i + 1}`).concat('    foo = 1;').join('\n');
  expect(formatMessage({ type: 'error', message: "unresolved identifier 'foo'", lineNum: 12, linePos: 5 }, code)).toBe("12:5: error: unresolved identifier 'foo'\n  12 |     foo = 1;\n     |     ^");
  expect(formatMessage({ type: 'error', message: 'no location', lineNum: 0, linePos: 0 }, code)).toBe('error: no location');
});

onDevice('webgpu', (d) => {
  describe('shader errors', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    test('a shader that does not compile names the op, the line:col and the source line', async () => {
      const err = await failure(d, probe('broken_probe', BROKEN));
      expect(err.message).toMatch(new RegExp(`^WGSL compile error in op broken_probe: ${LINE}:${COL}: error: .*not_declared`));
      expect(err.message).toContain(SHOWN);
      expect(err.message).toContain('(the launch of broken_probe for inputs [5])');
      await stillWorks(d);
    });

    test("a registered op's broken shader names the op and its kernels' folder (through Eager)", async () => {
      const relu = getOp('relu');
      vi.spyOn(relu, 'wgsl').mockImplementation((s) => probe('relu', BROKEN).wgsl(s, {}));
      const [y] = d.eager.call('relu', [d.eager.upload([5], [1, -2, 3, -4, 5])]);
      const err = await d.eager.read(y).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(new RegExp(`^WGSL compile error in op relu \\(kernels/elementwise/\\): ${LINE}:${COL}: error: `));
      expect(err?.message).toContain(SHOWN);
      vi.restoreAllMocks();
      await stillWorks(d);
    });

    test('work submitted before the sync point reports the compile error alone', async () => {
      // write() submits the recorded pass with the invalid pipeline before sync() looks.
      const err = await failure(d, probe('broken_probe', BROKEN), (b, x) => b.write(x, new Float32Array(5)));
      expect(err.message).toMatch(/^WGSL compile error in op broken_probe: /);
      expect(err.message).toContain(SHOWN);
      await stillWorks(d);
    });

    test('the same broken shader fails again: it is not cached', async () => {
      for (let i = 0; i < 2; i++) expect((await failure(d, probe('broken_probe', BROKEN))).message).toContain(SHOWN);
      await stillWorks(d);
    });

    test('a shader that compiles but has no entry point main: the pipeline error names the op', async () => {
      const code = BROKEN.replace('fn main(', 'fn other(').replace(' + not_declared', '');
      const err = await failure(d, probe('no_main_probe', code));
      expect(err.message).toMatch(/^webgpu: preparing op no_main_probe failed: .*main/s);
      expect(err.message).toContain('(the launch of no_main_probe for inputs [5])');
      await stillWorks(d);
    });
  });
});
