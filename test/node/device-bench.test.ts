// bench/device.sh's guard: without --quick, a software adapter (what Dawn finds when the GPU
// machine's Vulkan loader or ICD is missing) stops the run at once with exit code 2, naming the
// adapter, and writes no JSON; else the full shapes would spend the lent
// minutes on SwiftShader. Here the only adapter is SwiftShader, so the guard must fire.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { backendOf, onDevice } from '../harness.ts';

onDevice('webgpu', (d) => {
  test('bench/device.ts without --quick on a software adapter: exit 2 within seconds, the adapter named, no JSON written', (ctx) => {
    if (!/\(software\)$/.test(backendOf(d).description)) ctx.skip('a hardware adapter: the guard does not apply');
    const out = join(mkdtempSync(join(tmpdir(), 'statcell-device-')), 'device.json');
    let status = 0, stdout = '';
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'bench/device.ts', '--out', out], { encoding: 'utf8', timeout: 60_000, stdio: 'pipe' });
    } catch (e) {
      ({ status, stdout } = e as { status: number; stdout: string });
    }
    expect(status).toBe(2);
    expect(stdout).toContain(`${backendOf(d).description} is a software adapter, not the GPU`);
    expect(existsSync(out)).toBe(false); // an earlier result of the day is not replaced by nothing
  }, 90_000);

  test('bench/device.ts --quick with every part skipped: one whole JSON marked complete, nothing left beside it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'statcell-device-'));
    const out = join(dir, 'device.json');
    execFileSync(process.execPath, ['--import', 'tsx', 'bench/device.ts', '--quick', '--skip', 'kernels,convt,train2d,train3d', '--out', out], { encoding: 'utf8', timeout: 60_000, stdio: 'pipe' });
    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(result.complete).toBe(true);
    expect(result.adapter.description).toBe(backendOf(d).description);
    expect(readdirSync(dir)).toEqual(['device.json']);
  }, 90_000);
});
