// Tensors larger than one storage binding: the paper's 3D target model at batch 32 on an H100.
// WebGPU binds each tensor as one storage buffer, so no tensor may exceed the adapter's
// maxStorageBufferBindingSize. Dawn's Vulkan backend reports, for NVIDIA GPUs,
// maxStorageBufferBindingSize = min(maxBufferSize, 2^31 − 4) ("OpArrayLength returns 0 for
// buffers >= 2GB for some NVIDIA devices", crbug.com/435684920; src/dawn/native/vulkan/
// PhysicalDeviceVk.cpp), and maxBufferSize = the driver's VkPhysicalDeviceMaintenance4Properties::
// maxBufferSize (2^40 on NVIDIA's Linux drivers; any value ≥ 2 GiB gives the same plan here).
// WebGPU does not tell the device's memory, so the trainer checks the binding limit alone; the
// test checks the 80 GB on its own.

import { expect, test } from 'vitest';
import { compileModelFile } from '../../compiler/index.ts';
import { getOp } from '../../kernels/registry.ts';
import { numel } from '../../kernels/types.ts';
import { WebGpuBackend } from '../../runtime/webgpu.ts';
import { microBatchFor } from '../../session/model.ts';
import { backendOf, onDevice } from '../harness.ts';

const H100 = { maxStorageBufferBindingSize: 2 ** 31 - 4, maxBufferSize: 2 ** 40, memoryBytes: 80e9 };

/** The limits a WebGpuBackend on that adapter reports to the trainer (no device behind it: only `limits` is read). */
function h100Limits() {
  const device = { limits: { maxStorageBufferBindingSize: H100.maxStorageBufferBindingSize, maxBufferSize: H100.maxBufferSize }, features: new Set<string>(), lost: new Promise(() => {}) };
  return new WebGpuBackend(device as unknown as GPUDevice, 'NVIDIA H100 (limits as Dawn reports them)').limits;
}

test("target3d at batch 32 on an H100's limits: micro-batches chosen automatically, every tensor in one binding, all within 80 GB", () => {
  const model = compileModelFile('models/target3d.vae');
  const limits = h100Limits();
  expect(limits.maxBufferBytes).toBeLessThanOrEqual(H100.maxStorageBufferBindingSize);

  // The whole batch cannot run at once: its first full-resolution activation, [32, 32, 160, 96, 64], is 3.75 GiB.
  const whole = model.program('train', 32).program;
  expect(Math.max(...whole.buffers.map((b) => b.elements))).toBeGreaterThanOrEqual(32 * 32 * 160 * 96 * 64);
  expect(32 * 32 * 160 * 96 * 64 * 4).toBeGreaterThan(H100.maxStorageBufferBindingSize);

  // What the trainer picks with no --micro-batch: the largest divisor of 32 that fits.
  const micro = microBatchFor(model, 32, limits);
  expect(micro).toBe(16);

  // Checked here on its own: every buffer the step binds (the plan's and each launch's scratch),
  // rounded up to 16 bytes as allocated, within one binding; everything together within 80 GB.
  const p = model.program(`accumulate:${32 / micro!}`, micro!).program;
  const apply = model.program('apply', 0).program;
  const align16 = (elements: number) => Math.ceil((elements * 4) / 16) * 16;
  const scratch = [...p.launches, ...apply.launches].flatMap((l) => getOp(l.op).wgsl(l.inShapes, l.attrs).scratch ?? []);
  for (const n of [...p.buffers.map((b) => b.elements), ...scratch]) expect(align16(n)).toBeLessThanOrEqual(H100.maxStorageBufferBindingSize);
  const params = model.tensors.filter((t) => t.kind === 'param').reduce((a, t) => a + numel(t.shape), 0);
  const persistent = model.tensors.reduce((a, t) => a + numel(t.shape), 0) + 3 * params; // + Adam m, v and the gradient accumulators
  const temps = (q: typeof p) => q.buffers.filter((b) => b.kind === 'temp' || b.kind === 'input').reduce((a, b) => a + align16(b.elements), 0);
  const total = temps(p) + temps(apply) + persistent * 4 + scratch.reduce((a, n) => a + align16(n), 0);
  expect(total).toBeLessThan(H100.memoryBytes);
  console.log(`target3d batch 32 on H100 limits: ${32 / micro!} micro-batches of ${micro}; largest tensor ${(Math.max(...p.buffers.map((b) => b.elements)) * 4 / 2 ** 30).toFixed(3)} GiB (binding ≤ ${((2 ** 31 - 4) / 2 ** 30).toFixed(3)} GiB); ${(total / 2 ** 30).toFixed(2)} GiB in all`);
});

test("the memory check counts the step's own buffers and the store: parameters, state, Adam's two moments", () => {
  const model = compileModelFile('models/reference2d.vae', { overrides: { size: [64, 32], channels: [4, 8, 16], latent: 8 } });
  const p = model.program('train', 12).program;
  const own = p.buffers.filter((b) => b.kind === 'temp' || b.kind === 'input').reduce((a, b) => a + b.elements, 0);
  const params = model.tensors.filter((t) => t.kind === 'param').reduce((a, t) => a + numel(t.shape), 0);
  const need = (own + model.tensors.reduce((a, t) => a + numel(t.shape), 0) + 2 * params) * 4;
  expect(microBatchFor(model, 12, { maxBufferBytes: 2 ** 40, totalBytes: need / 0.9 })).toBe(12);
  // Half of Adam's moments short: the whole batch no longer fits.
  expect(microBatchFor(model, 12, { maxBufferBytes: 2 ** 40, totalBytes: (need - 4 * params) / 0.9 })).toBeLessThan(12);
});

onDevice('webgpu', (d) => {
  test("a tensor over the adapter's binding limit is refused at prepare, naming the op and the limit", async () => {
    backendOf(d); // the harness has pointed Vulkan at the adapter it found
    const { create } = await import('webgpu');
    const gpu = create([]);
    const adapter = (await gpu.requestAdapter())!;
    // WebGPU's default limits: bindings of 128 MiB in buffers of up to 256 MiB.
    const be = new WebGpuBackend(await adapter.requestDevice(), 'default limits', { gpu, adapter });
    try {
      expect(be.limits.maxBufferBytes).toBe(2 ** 27);
      const n = 2 ** 25 + 4; // 128 MiB + 16 bytes
      const [a, b] = [be.alloc(n), be.alloc(n)];
      expect(() => be.prepare(getOp('copy'), [[n]], {}, [a], [b])).toThrow(/copy binds a tensor of 33554436 floats \(134217744 bytes\), over this adapter's maxStorageBufferBindingSize 134217728; train such a batch in micro-batches/);
      const [c, e] = [be.alloc(2 ** 25), be.alloc(2 ** 25)];
      be.release(be.prepare(getOp('copy'), [[2 ** 25]], {}, [c], [e])); // exactly the limit: bound
      await be.sync();
    } finally {
      be.destroy();
    }
  });
});
