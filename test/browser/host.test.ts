// Browser-only checks of what the browser host needs: a WebGPU adapter (required in CI), the
// harness failing in CI without one, the Wasm kernels loaded through Vite, and the golden
// fixtures (test/golden/) served to the page.

import { expect, inject, test, vi } from 'vitest';
import { openWebGpu } from '../../runtime/device.ts';
import { WasmBackend } from '../../runtime/wasm.ts';

test('runs in a browser page served from http://localhost', () => {
  expect(typeof window).toBe('object');
  expect(location.protocol).toBe('http:');
  expect(location.hostname).toBe('localhost');
});

test('navigator.gpu gives an adapter (required when CI is set)', async (ctx) => {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter && !inject('ci')) ctx.skip('no WebGPU adapter in this browser');
  expect(adapter, 'Chromium must be started with --enable-unsafe-webgpu').toBeTruthy();
  const backend = await openWebGpu(true);
  expect(backend.kind).toBe('webgpu');
  backend.destroy();
});

test('without an adapter the harness fails in CI and skips WebGPU otherwise', async () => {
  // As Chromium without --enable-unsafe-webgpu does: navigator.gpu exists, the adapter is null.
  const gpu = navigator.gpu;
  expect(gpu, 'navigator.gpu').toBeTruthy();
  const spy = vi.spyOn(gpu, 'requestAdapter').mockResolvedValue(null);
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  try {
    // A fresh copy of the harness: its devices are opened once per module instance.
    vi.resetModules();
    const { devices, openDevice } = await import('../harness.ts');
    if (inject('ci')) {
      await expect(devices()).rejects.toThrow(/CI is set but WebGPU could not be opened.*no adapter/);
      // What each WebGPU test of forEachDevice fails with.
      await expect(openDevice('webgpu')).rejects.toThrow(/CI is set but WebGPU could not be opened/);
    } else {
      const list = await devices();
      expect(list.map((d) => d.name)).not.toContain('webgpu');
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/WebGPU tests skipped/));
      // forEachDevice skips the WebGPU tests on this null.
      await expect(openDevice('webgpu')).resolves.toBeNull();
      expect(warn.mock.calls.filter(([m]) => /WebGPU tests skipped/.test(String(m))), 'warned once').toHaveLength(1);
    }
    expect(spy).toHaveBeenCalled();
  } finally {
    spy.mockRestore();
    warn.mockRestore();
    vi.resetModules();
  }
});

test('the Wasm kernels load through Vite', async () => {
  const backend = await WasmBackend.create();
  const x = backend.alloc(3);
  backend.write(x, new Float32Array([1, -2, 3]));
  expect(Array.from(await backend.read(x))).toEqual([1, -2, 3]);
  backend.destroy();
});

test('the golden fixtures are served to the page, binary files intact', async () => {
  const urls = [new URL('/test/golden/index.json', location.origin)];
  for (const url of urls) {
    const res = await fetch(url);
    expect(res.status, `GET ${url}`).toBe(200);
    expect((await res.json()) as Record<string, unknown>, `${url}`).toHaveProperty('block_down2d');
  }
  // safetensors starts with a little-endian u64 header length followed by that many bytes of JSON.
  const res = await fetch(new URL('/test/golden/block_down2d.safetensors', location.origin));
  expect(res.status).toBe(200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  expect(n).toBeGreaterThan(2);
  expect(8 + n).toBeLessThanOrEqual(bytes.length);
  expect(() => JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))).not.toThrow();
});

test('the test server does not serve files outside the repository', async () => {
  const res = await fetch('/@fs/etc/passwd');
  expect(res.status).toBe(403);
});
