// Golden fixtures (test/golden/, see its README): float64 results of an independent PyTorch
// implementation, kept in the repository so that a fresh clone tests without ../shared. Node
// reads them from disk; a browser fetches the same URL from the Vite test server.

import { parseSafetensors, type SafeTensors } from '../runtime/safetensors.ts';

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

export async function loadFixture(name: string): Promise<ArrayBuffer> {
  // A browser page gets test modules at their file-system path, which the server does not map back
  // to files; the repository root is the server's root.
  const url = isNode ? new URL('./golden/' + name, import.meta.url) : new URL('/test/golden/' + name, location.origin);
  if (isNode) {
    const { readFile } = await import('node:fs/promises');
    const buf = await readFile(url);
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`loadFixture: GET ${url} answered ${res.status} ${res.statusText} (is the fixtures folder served?)`);
  return res.arrayBuffer();
}

/** Reads and parses `<name>.safetensors`. */
export async function loadSafetensorsFixture(name: string): Promise<SafeTensors> {
  return parseSafetensors(await loadFixture(name.endsWith('.safetensors') ? name : `${name}.safetensors`));
}
