// Picks and opens a backend: explicitly (`webgpu` / `wasm`) or automatically (a hardware GPU
// adapter → WebGPU, otherwise Wasm), and says in one line which and why.

import type { Backend, BackendKind } from './backend.ts';
import { WebGpuBackend } from './webgpu.ts';
import { WasmBackend } from './wasm.ts';

export type BackendChoice = BackendKind | 'auto';

export interface OpenedBackend {
  backend: Backend;
  /** One line: which backend was picked and why. */
  reason: string;
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

interface Adapter {
  adapter: GPUAdapter;
  software: boolean;
  name: string;
  keepAlive?: unknown;
}

/** Node: Dawn through the `webgpu` package; falls back to SwiftShader when `allowSoftware`. */
async function nodeAdapter(allowSoftware: boolean): Promise<Adapter | null> {
  const { create } = await import('webgpu');
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const tryOnce = async () => {
    const gpu = create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? describe(adapter, gpu) : null;
  };
  let found = await tryOnce();
  if (!found && allowSoftware && !process.env.VK_ICD_FILENAMES) {
    const { existsSync } = await import('node:fs');
    if (existsSync(SWIFTSHADER_ICD)) {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
      found = await tryOnce();
    }
  }
  return found;
}

async function browserAdapter(): Promise<Adapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  return adapter ? describe(adapter) : null;
}

function describe(adapter: GPUAdapter, keepAlive?: unknown): Adapter {
  const i = adapter.info;
  const software = (i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(`${i.architecture} ${i.description} ${i.device}`);
  const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ');
  return { adapter, software, name: name || 'unnamed adapter', keepAlive };
}

export async function openWebGpu(allowSoftware = true): Promise<WebGpuBackend> {
  const found = isNode ? await nodeAdapter(allowSoftware) : await browserAdapter();
  if (!found)
    throw new Error(
      isNode
        ? `webgpu: no adapter found. Install a GPU driver, or Debian's chromium package for the SwiftShader Vulkan driver (${SWIFTSHADER_ICD}) and libvulkan1; or use --backend wasm`
        : 'webgpu: navigator.gpu gave no adapter (in Chromium start it with --enable-unsafe-webgpu and serve the page from http://localhost); or use the wasm backend',
    );
  return openOn(found);
}

async function openOn(found: Adapter): Promise<WebGpuBackend> {
  const { adapter } = found;
  // Ask for the adapter's own limits: the defaults (8 storage buffers, 128 MiB bindings) are too tight.
  const want = ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY'] as const;
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k];
  const device = await adapter.requestDevice({ requiredLimits });
  return new WebGpuBackend(device, `${found.name}${found.software ? ' (software)' : ''}`, found.keepAlive);
}

export async function openBackend(choice: BackendChoice = 'auto'): Promise<OpenedBackend> {
  if (choice === 'wasm') {
    const backend = await WasmBackend.create();
    return { backend, reason: `backend wasm (${backend.description}): chosen explicitly` };
  }
  if (choice === 'webgpu') {
    const backend = await openWebGpu(true);
    return { backend, reason: `backend webgpu (${backend.description}): chosen explicitly` };
  }
  const found = isNode ? await nodeAdapter(false).catch(() => null) : await browserAdapter().catch(() => null);
  if (found && !found.software) {
    const backend = await openOn(found);
    return { backend, reason: `backend webgpu (${backend.description}): a hardware GPU adapter was found` };
  }
  const backend = await WasmBackend.create();
  const why = found ? `the only WebGPU adapter is software (${found.name}), slower than Wasm` : 'no WebGPU adapter was found';
  return { backend, reason: `backend wasm (${backend.description}): ${why}` };
}
