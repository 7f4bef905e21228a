// The paper's four models compiled from models/*.vae: parameter counts (the paper's figures),
// shapes, the memory plan of the real training step, and diagnostics for broken model files.

import { describe, expect, test } from 'vitest';
import { compileReport } from '../../cli/compile.ts';
import { compileModelFile, parameterCount } from '../../compiler/index.ts';
import { lower, memoryStats } from '../../compiler/plan.ts';
import { diag, variant } from './model-files.ts';

const layerParams = (m: ReturnType<typeof compileModelFile>, paths: string[]) =>
  (m.trainStep(2).layers ?? []).filter((l) => paths.includes(l.path)).reduce((s, l) => s + l.params, 0);
const residual = (block: string) => ['conv1', 'bn1', 'conv2', 'bn2'].map((l) => `${block}.${l}`);

describe('the paper models', () => {
  test.each([
    ['reference2d', 22_279_054, 11_004_902, 11_274_152],
    ['target2d', 22_325_495, 11_036_275, 11_289_220],
    ['reference3d', 61_291_342, 26_181_926, 35_109_416],
    ['target3d', 61_336_487, 26_212_579, 35_123_908],
  ])('%s: %i parameters (encoder %i, decoder %i)', (name, total, enc, dec) => {
    const m = compileModelFile(`models/${name}.vae`);
    expect(parameterCount(m)).toBe(total);
    expect(parameterCount(m, (o) => o.startsWith('enc'))).toBe(enc);
    expect(parameterCount(m, (o) => o.startsWith('dec'))).toBe(dec);
  });

  test('entries leave the state as they found it; the training step updates every state tensor', () => {
    // As PyTorch in eval mode: BatchNorm uses its running statistics and spectral norm its stored
    // vector, neither updated, so encode / decode / generate give the same result in any order.
    const m = compileModelFile('models/target2d.vae', { overrides: { size: [32, 24], channels: [4, 8, 16], latent: 8 } });
    for (const e of m.entryNames) expect([...m.entry(e, 2).graph.updates.keys()], e).toEqual([]);
    const state = m.tensors.filter((t) => t.kind === 'state').map((t) => t.name);
    expect(state.some((n) => n.endsWith('.sn_u')) && state.some((n) => n.endsWith('.running_mean'))).toBe(true);
    const updated = new Set(m.trainStep(2).graph.updates.keys());
    expect(state.filter((n) => !updated.has(n))).toEqual([]);
  });

  test('3D M_R + M_T is the paper\'s 122,627,829', () => {
    expect(parameterCount(compileModelFile('models/reference3d.vae')) + parameterCount(compileModelFile('models/target3d.vae'))).toBe(122_627_829);
  });

  test('per-block figures of statistical-cell.md §1.7', () => {
    const t3 = compileModelFile('models/target3d.vae');
    expect(layerParams(t3, residual('enc.down4'))).toBe(7_735_552);
    expect(layerParams(t3, ['enc.fc_mu'])).toBe(7_864_832);
    expect(layerParams(t3, ['dec.fc'])).toBe(7_879_680);
    expect(layerParams(t3, residual('dec.up0'))).toBe(20_318_464);
    const r2 = compileModelFile('models/reference2d.vae');
    expect(layerParams(r2, ['enc.fc_mu'])).toBe(3_932_672);
    expect(layerParams(r2, ['dec.fc'])).toBe(3_939_840);
    expect(layerParams(r2, residual('dec.up0'))).toBe(5_376_256);
  });

  test('shapes: the encoder halves five times, the decoder restores the input', () => {
    const m = compileModelFile('models/target3d.vae');
    const layers = m.trainStep(2).layers!;
    expect(layers.find((l) => l.path === 'enc.down4.bn2')!.output).toEqual([2, 512, 5, 3, 2]);
    expect(layers.find((l) => l.path === 'dec.up4.bn2')!.output).toEqual([2, 1, 160, 96, 64]);
    expect(m.entry('encode', 3).graph.outputs.get('mu')!.shape).toEqual([3, 512]);
  });

  test('the training step\'s memory plan: a peak below the sum of all tensors, no two live values in one buffer', () => {
    const p = lower(compileModelFile('models/reference2d.vae').trainStep(8).graph);
    const { planned, unplanned } = memoryStats(p);
    expect(planned).toBeLessThan(unplanned / 2);
    const temps = p.lifetimes.filter((l) => !l.view && p.buffers[l.buffer].kind === 'temp');
    const byBuffer = new Map<number, typeof temps>();
    for (const l of temps) (byBuffer.get(l.buffer) ?? byBuffer.set(l.buffer, []).get(l.buffer)!).push(l);
    for (const ls of byBuffer.values()) {
      ls.sort((a, b) => a.from - b.from);
      // In-place ops hand a buffer from the value they consume to the one they make at the same launch.
      for (let i = 1; i < ls.length; i++) expect(ls[i].from, `buffer ${ls[i].buffer}: value ${ls[i].value} born while ${ls[i - 1].value} lives`).toBeGreaterThanOrEqual(ls[i - 1].to);
    }
  });

  test('statcell compile report: layers, totals, planned memory per entry', () => {
    const { text, total } = compileReport(compileModelFile('models/target2d.vae'), 8);
    expect(total).toBe(22_325_495);
    expect(text).toMatch(/enc\.down0\.cond_ref\.conv\s+conv\s+\[8, 32, 80, 48\]\s+96/);
    expect(text).toMatch(/total 22,325,495 parameters/);
    for (const e of ['train step', 'encode', 'decode', 'generate']) expect(text).toMatch(new RegExp(`${e}\\s+[\\d.]+ MiB planned`));
  });

  test('an inference-only model (no training step) is reported by its entries (it was refused: SC5001)', async () => {
    const { compileModel } = await import('../../compiler/index.ts');
    const src = 'model M() {\n  input x: [B, 2, 8, 8] as image("membrane", "dna")\n  entry features(x) -> (a: [B, 4]) { return flatten(x) |> head: linear(4) }\n}\n';
    const { text, total } = compileReport(compileModel(new Map([['m.vae', src]]), 'm.vae'), 8);
    expect(total).toBe(2 * 8 * 8 * 4 + 4);
    expect(text).toMatch(/head\s+linear\s+\[8, 4\]\s+516/);
    expect(text).toContain('(model M has no training step: its entries only)');
    expect(text).toMatch(/features\s+[\d.]+ MiB planned/);
    expect(text).not.toContain('train step');
  });
});

describe('report', () => {
  test('a reported value must be one number: SC3008 at it (the trainer logged a [B] value\'s first cell, which passed for the metric)', async () => {
    const { compileModel } = await import('../../compiler/index.ts');
    const src = [
      'model Rep(size: [int] = [8, 8]) {',
      '  input x: [B, 2, ...size] as image("membrane", "dna")',
      '  train step(x) {',
      '    f = flatten(x) |> l: linear(2)',
      '    per_cell = sum(f * f, keep_batch = true)',
      '    loss = mean(per_cell)',
      '    minimize loss using adam(lr = 1e-3)',
      '    report loss, per_cell',
      '  }',
      '}',
    ].join('\n');
    expect(() => compileModel(new Map([['rep.vae', src]]), 'rep.vae')).toThrow(/^rep\.vae:8:18: error\[SC3008\]: a reported value \(per_cell\) must be one number, got shape \[2\]/);
    const ok = compileModel(new Map([['rep.vae', src.replace('report loss, per_cell', 'avg = mean(per_cell)\n    report loss, avg')]]), 'rep.vae');
    expect(ok.trainStep(4).metrics).toEqual(['loss', 'avg']);
  });
});

describe('diagnostics for broken model files', () => {
  const small = `import "${process.cwd()}/models/statcell.vae"\n`;
  const block = (body: string) => `block Bad(cout: int)(x: [B, C, ...S]) -> [B, cout, ...S] {\n${body}\n}\nmodel M(n: int = 4) {\n  input x: [B, 2, 8, 8]\n  entry f(x) -> [B, 4, 8, 8] {\n    return x |> b: Bad(n)\n  }\n}\n`;

  test('an image size the five halvings do not divide', () => {
    const msg = diag('models/reference2d.vae', { size: [100, 96] });
    expect(msg).toMatch(/^models\/statcell\.vae:25:19: error\[SC3004\]: the output of block Down: S\/2 is not a whole size \(25 is not divisible by 2\)/);
    expect(msg).toMatch(/in block Down called at models\/statcell\.vae:60:23\n {2}in block Encoder called at models\/statcell\.vae:132:18/);
    expect(msg).toMatch(/note: the model's size parameter is \[100,96\]/);
  });
  test('a syntax error points at its line and column', () => {
    const msg = diag(variant('syntax', `${small}model X = StatCell(dims = 2,, beta = 0.3)\n`));
    expect(msg).toMatch(/syntax\.vae:2:29: error\[SC1001\]/);
  });
  test('an unknown name', () => {
    const msg = diag(variant('unknown', block('  return x |> c: conv(cout, k = 3, pad = 1) |> rleu')));
    expect(msg).toMatch(/unknown\.vae:2:48: error\[SC2001\]: unknown name 'rleu'/);
    // Found when the file is loaded (dsl/resolve.ts), not when a call runs the block: no call chain.
    expect(msg).not.toMatch(/in block Bad called at/);
  });
  test('a shape mismatch inside a block, with the call chain', () => {
    const msg = diag(variant('shape', block('  y = x |> c: conv(cout, k = 3)\n  return y')));
    expect(msg).toMatch(/shape\.vae:3:3: error\[SC3001\]: the output of block Bad has shape \[2, 4, 6, 6\], the declaration says \[B, cout, \.\.\.S\]: axes 2–3 are \[6, 6\] where it declares \.\.\.S = \[8, 8\]/);
    expect(msg).toMatch(/in block Bad called at .*shape\.vae:8:20/);
  });
  test('a shape mismatch against a literal size names the axis and both sizes', () => {
    const msg = diag(variant('literal', block('  return x |> c: conv(cout, k = 3, pad = 1)').replace('-> [B, cout, ...S]', '-> [B, 3, ...S]')));
    expect(msg).toMatch(/literal\.vae:2:3: error\[SC3001\]: the output of block Bad has shape \[2, 4, 8, 8\], the declaration says \[B, 3, \.\.\.S\]: axis 1 is 4 where it declares 3$/m);
  });
  test('a wrong number of block arguments', () => {
    const msg = diag(variant('args', block('  return x |> c: conv(cout, k = 1)').replace('b: Bad(n)', 'b: Bad(n, 3)')));
    expect(msg).toMatch(/args\.vae:7:27: error\[SC2016\]: block Bad takes 1 parameter\(s\), this is argument 2/);
  });
  test('an override of an unknown parameter, and of the wrong type', () => {
    expect(diag('models/reference2d.vae', { latnet: 8 })).toMatch(/error\[SC2004\]: model StatCell has no parameter 'latnet'/);
    expect(diag('models/reference2d.vae', { latent: 'big' })).toMatch(/error\[SC4001\]: parameter 'latent' got "big"/);
  });
  test('messages carry the source line and a caret, and no stack trace', () => {
    const msg = diag(variant('caret', block('  return x |> c: conv(cout, k = 3, pad = 1) |> rleu')));
    expect(msg).toMatch(/\n2 \|   return x \|> c: conv\(cout, k = 3, pad = 1\) \|> rleu\n {2}\| {48}\^{4}\n/);
    expect(msg).not.toMatch(/\n\s+at /);
  });
});
