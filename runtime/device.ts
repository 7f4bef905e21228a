// Picks and opens a backend: explicitly (`webgpu` / `wasm`) or automatically (a hardware GPU
// adapter → WebGPU, otherwise Wasm), and says in one line which and why.
//
// Dawn and the Vulkan loader write their warnings from native code straight to fd 2 (on a
// machine without a GPU driver: "Warning: vkCreateInstance: Found no drivers!" and a Dawn source
// location), out of reach of any JS hook. So in Node a short child process tries the adapters
// first, its stderr kept (or let through when verbose: STATCELL_VERBOSE=1, `statcell --verbose`),
// and this process opens only an adapter the child found; opening one that works prints nothing.

import type { Backend, BackendKind } from './backend.ts';
import { OPTIONAL_FEATURES, WebGpuBackend, type OptionalFeature } from './webgpu.ts';
import { WasmBackend } from './wasm.ts';

export type BackendChoice = BackendKind | 'auto';

export interface OpenedBackend {
  backend: Backend;
  /** One line: which backend was picked and why. */
  reason: string;
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

/** Driver output on the terminal: env STATCELL_VERBOSE (set by `statcell --verbose`). */
const verbose = () => !!process.env.STATCELL_VERBOSE && process.env.STATCELL_VERBOSE !== '0';

/** An adapter as the backend line names it. */
export interface AdapterSummary {
  name: string;
  software: boolean;
}

interface Adapter extends AdapterSummary {
  adapter: GPUAdapter;
  keepAlive?: unknown;
}

/** What the child process found: with the Vulkan drivers the environment gives, and (when asked, none found there) with SwiftShader. */
interface Probe {
  system: AdapterSummary | null;
  swiftshader: AdapterSummary | null;
  /** What Dawn and the drivers printed (empty when verbose: it went to the terminal). */
  log: string;
}

// The child: plain JS (no loader), argv = [webgpu's index.js URL, SwiftShader ICD, '1' to try it].
const PROBE = `
const [url, icd, soft] = process.argv.slice(1);
const { existsSync } = await import('node:fs');
const { create } = await import(url);
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const info = async () => {
  const a = await create([]).requestAdapter({ powerPreference: 'high-performance' });
  if (!a) return null;
  const i = a.info;
  return { vendor: i.vendor, architecture: i.architecture, description: i.description, device: i.device, isFallbackAdapter: i.isFallbackAdapter };
};
const out = { system: await info(), swiftshader: null };
if (!out.system && soft && !process.env.VK_ICD_FILENAMES && existsSync(icd)) {
  process.env.VK_ICD_FILENAMES = icd;
  out.swiftshader = await info();
}
process.stdout.write(JSON.stringify(out) + '\\n', () => process.exit(0));
`;

/** Tries the adapters in a child process; null when that fails (then this process tries them itself). */
async function probeNode(allowSoftware: boolean): Promise<Probe | null> {
  const { spawn } = await import('node:child_process');
  const { createRequire } = await import('node:module');
  const { pathToFileURL } = await import('node:url');
  let url: string;
  try {
    url = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return null; // no `webgpu` package here: nodeAdapter says so
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE, url, SWIFTSHADER_ICD, allowSoftware ? '1' : ''], { stdio: ['ignore', 'pipe', verbose() ? 'inherit' : 'pipe'], timeout: 60_000 });
    let out = '';
    let log = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (log += d));
    child.on('error', () => resolve(null));
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error();
        const r = JSON.parse(out) as Record<'system' | 'swiftshader', Parameters<typeof summarize>[0] | null>;
        resolve({ system: r.system && summarize(r.system), swiftshader: r.swiftshader && summarize(r.swiftshader), log });
      } catch {
        resolve(null);
      }
    });
  });
}

/** Node: Dawn through the `webgpu` package; falls back to SwiftShader when `allowSoftware`. Only
 * what `probe` found is tried (all of it without a probe). */
async function nodeAdapter(allowSoftware: boolean, probe: Probe | null): Promise<Adapter | null> {
  const { create } = await import('webgpu');
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const tryOnce = async () => {
    const gpu = create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? describe(adapter, gpu) : null;
  };
  let found = !probe || probe.system ? await tryOnce() : null;
  if (!found && allowSoftware && !process.env.VK_ICD_FILENAMES && (!probe || probe.swiftshader)) {
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

export function summarize(i: { vendor?: string; architecture?: string; description?: string; device?: string; isFallbackAdapter?: boolean }): AdapterSummary {
  const software = i.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(`${i.architecture} ${i.description} ${i.device}`);
  const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ');
  return { software, name: name || 'unnamed adapter' };
}

function describe(adapter: GPUAdapter, keepAlive?: unknown): Adapter {
  return { adapter, ...summarize(adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }), keepAlive };
}

/** The first thing the drivers said, for an error message. */
const driverSaid = (probe: Probe | null) => {
  const first = probe?.log.split('\n').find((l) => l.trim())?.replace(/^Warning:\s*/, '');
  return first ? ` (the driver said: ${first.trim()}; --verbose shows all it printed)` : '';
};

export interface WebGpuOptions {
  /**
   * Optional features not to request even where the adapter offers them, e.g. ['subgroups'] to
   * run the core-WGSL kernels for a test or a comparison. The device then lacks them: a shader
   * that used one anyway would fail to compile. The backend line says `<feature> off`.
   */
  disable?: OptionalFeature[];
}

export async function openWebGpu(allowSoftware = true, options: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const probe = isNode ? await probeNode(allowSoftware) : null;
  const found = isNode ? await nodeAdapter(allowSoftware, probe) : await browserAdapter();
  if (!found)
    throw new Error(
      isNode
        ? `webgpu: no adapter found${driverSaid(probe)}. Install a GPU driver, or Debian's chromium package for the SwiftShader Vulkan driver (${SWIFTSHADER_ICD}) and libvulkan1; or use --backend wasm`
        : 'webgpu: navigator.gpu gave no adapter (in Chromium start it with --enable-unsafe-webgpu and serve the page from http://localhost); or use the wasm backend',
    );
  return openOn(found, options.disable);
}

async function openOn(found: Adapter, disable: readonly OptionalFeature[] = []): Promise<WebGpuBackend> {
  const { adapter } = found;
  // Ask for the adapter's own limits: the defaults (8 storage buffers, 128 MiB bindings) are too tight.
  const want = ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY'] as const;
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k];
  // The optional features the adapter has (timestamps for --profile, subgroups, f16): requesting
  // one changes nothing until a shader or pass uses it, and each use checks the device first.
  const offered = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredFeatures = offered.filter((f) => !disable.includes(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const disabled = offered.filter((f) => disable.includes(f));
  return new WebGpuBackend(device, `${found.name}${found.software ? ' (software)' : ''}`, found.keepAlive, disabled);
}

/** The backend line: which backend was opened and why; `adapter` is the WebGPU adapter an automatic choice saw (null: none). */
export function backendReason(choice: BackendChoice, backend: { kind: BackendKind; description: string; features?: readonly string[]; disabled?: readonly string[] }, adapter: AdapterSummary | null = null): string {
  const head = `backend ${backend.kind} (${backend.description})`;
  const features = backend.features ? `; WebGPU features: ${featureLine(backend.features, backend.disabled)}` : '';
  // Asked for by name, a software adapter is used, but said to be slow: runs that take a second on Wasm take minutes on it.
  const slow = backend.kind === 'webgpu' && /\(software\)$/.test(backend.description) ? '; a software adapter: expect it to run far slower than --backend wasm on this machine' : '';
  if (choice !== 'auto') return `${head}: chosen explicitly${slow}${features}`;
  if (backend.kind === 'webgpu') return `${head}: a hardware GPU adapter was found${features}`;
  if (adapter?.software) return `${head}: WebGPU has only a software adapter (${adapter.name}), which is slower than Wasm here; --backend webgpu uses it`;
  return `${head}: no WebGPU adapter was found`;
}

/**
 * The optional WebGPU features a device has, has turned off and lacks, e.g.
 * `timestamp-query; subgroups off; no shader-f16`.
 */
export function featureLine(features: readonly string[], disabled: readonly string[] = []): string {
  const has = OPTIONAL_FEATURES.filter((f) => features.includes(f));
  const off = OPTIONAL_FEATURES.filter((f) => disabled.includes(f) && !features.includes(f));
  const lacks = OPTIONAL_FEATURES.filter((f) => !features.includes(f) && !off.includes(f));
  return [has.join(', '), off.map((f) => `${f} off`).join(', '), lacks.length ? `no ${lacks.join(', no ')}` : ''].filter(Boolean).join('; ');
}

export async function openBackend(choice: BackendChoice = 'auto'): Promise<OpenedBackend> {
  if (choice === 'wasm') {
    const backend = await WasmBackend.create();
    return { backend, reason: backendReason(choice, backend) };
  }
  if (choice === 'webgpu') {
    const backend = await openWebGpu(true);
    return { backend, reason: backendReason(choice, backend) };
  }
  // Open a hardware adapter only; a software one is just named (Wasm is faster than it).
  let found: AdapterSummary | Adapter | null = null;
  if (isNode) {
    const probe = await probeNode(true);
    if (!probe) found = await nodeAdapter(false, null).catch(() => null);
    else if (probe.system && !probe.system.software) found = await nodeAdapter(false, probe).catch(() => null);
    else found = probe.system ?? probe.swiftshader;
  } else found = await browserAdapter().catch(() => null);
  if (found && !found.software && 'adapter' in found) {
    const backend = await openOn(found);
    return { backend, reason: backendReason(choice, backend, found) };
  }
  const backend = await WasmBackend.create();
  return { backend, reason: backendReason(choice, backend, found) };
}
