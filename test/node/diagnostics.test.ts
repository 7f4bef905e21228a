// Diagnostics that help: "did you mean" for unknown names, `--set` errors that point at the
// command line, and a terminal free of GPU driver noise with a backend line that says the truth.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseSet } from '../../cli/options.ts';
import { compileModel, compileModelFile } from '../../compiler/index.ts';
import { CODES, diagnostic, DiagnosticError, formatMessage, MAX_QUOTED_COLUMNS, MAX_RENDERED_DIAGNOSTICS, renderDiagnostic, renderDiagnostics } from '../../dsl/diagnostics.ts';
import { MAX_CHAIN } from '../../dsl/index.ts';
import { closestName, didYouMean, editDistance } from '../../dsl/suggest.ts';
import { backendReason } from '../../runtime/device.ts';
import { diag, variant, VARIANTS } from './model-files.ts';

const block = (body: string, call = 'b: Bad(n)') =>
  `block Bad(cout: int)(x: [B, C, ...S], skip?: [B, C, ...S]) -> [B, cout, ...S] {\n${body}\n}\nmodel M(n: int = 4) {\n  input x: [B, 2, 8, 8]\n  entry f(x) -> [B, 4, 8, 8] {\n    return x |> ${call}\n  }\n}\n`;

describe('did you mean', () => {
  test('edit distance counts a swap of neighbours as one edit', () => {
    expect(editDistance('rleu', 'relu')).toBe(1);
    expect(editDistance('latnet', 'latent')).toBe(1);
    expect(editDistance('cout', 'count')).toBe(1);
    expect(editDistance('abc', 'xyz')).toBe(3);
    expect(editDistance('', 'ab')).toBe(2);
  });
  test('only close names are offered, short names only by case', () => {
    expect(closestName('rleu', ['softplus', 'relu', 'exp'])).toBe('relu');
    expect(closestName('x', ['y', 'z'])).toBeUndefined();
    expect(closestName('X', ['y', 'x'])).toBe('x');
    expect(closestName('lattent', ['latent', 'lr'])).toBe('latent');
    expect(closestName('channels', ['classes'])).toBeUndefined();
    expect(didYouMean('sizee', ['size', 'dims'])).toEqual(["did you mean 'size'?"]);
    expect(didYouMean('zzz', ['size'])).toEqual([]);
  });
  test('an unknown name', () => {
    expect(diag(variant('name', block('  return x |> c: conv(cout, k = 3, pad = 1) |> rleu')))).toMatch(/error\[SC2001\]: unknown name 'rleu'[^]*= note: did you mean 'relu'\?/);
    // Names in scope count: a parameter of the block.
    expect(diag(variant('scope', block('  return x |> c: conv(coutt, k = 1)')))).toMatch(/unknown name 'coutt'[^]*did you mean 'cout'\?/);
  });
  test('an unknown layer parameter, block parameter and block input', () => {
    expect(diag(variant('layer', block('  return x |> c: conv(cout, kk = 3, pad = 1)')))).toMatch(/error\[SC2004\]: layer conv has no parameter 'kk'\n[^]*= note: did you mean 'k'\?\n {2}= note: parameters: cout, k,/);
    expect(diag(variant('blockp', block('  return x |> c: conv(cout, k = 1)', 'b: Bad(cuot = n)')))).toMatch(/block Bad has no parameter 'cuot'[^]*did you mean 'cout'\?/);
    expect(diag(variant('input', block('  return x |> c: conv(cout, k = 1)', 'b: Bad(n)(skp = x)')))).toMatch(/block Bad has no input 'skp'[^]*did you mean 'skip'\?/);
  });
  test('an unknown model parameter, in an instance and with --set', () => {
    const inst = variant('inst', `import "${relative(VARIANTS, 'models/statcell.vae')}"\nmodel X = StatCell(dims = 2, lattent = 8)\n`);
    expect(diag(inst)).toMatch(/inst\.vae:2:30: error\[SC2004\]: model StatCell has no parameter 'lattent'\n[^]*= note: did you mean 'latent'\?/);
    expect(diag('models/reference2d.vae', { latnet: 8 })).toMatch(/^--set latnet=8: error\[SC2004\]: model StatCell has no parameter 'latnet'\n {2}= note: did you mean 'latent'\?\n {2}= note: parameters: dims, size,/);
  });
});

describe('a failing assert of a model template points at the argument that made it fail', () => {
  test('StatCell(dims = 1): SC4002 "dims must be 2 … or 3", with a note at the override or --set (a 1D model compiled, and training called it 3D)', () => {
    const one = variant('one', `import "${relative(VARIANTS, 'models/statcell.vae')}"\nmodel B = StatCell(dims = 1, size = [32], channels = [4, 8], latent = 4)\n`);
    const msg = diag(one);
    expect(msg).toMatch(/models\/statcell\.vae:\d+:\d+: error\[SC4002\]: dims must be 2 \(Y, X\) or 3 \(Y, X, Z\)/);
    expect(msg.endsWith(`= note: dims = 1 is given at ${one}:2:20`)).toBe(true);
    // The other override is named too, once: the assert's own note names dims.
    expect(diag('models/reference2d.vae', { dims: 4, size: [8, 8, 8, 8] })).toMatch(/error\[SC4002\]: dims must be 2[^]*= note: dims = 4 is given by --set dims=4\n\s*= note: built with the overrides size = \[8,8,8,8\] \(--set, or the run's run\.json\)$/);
  });
});

describe('model contracts found by testers', () => {
  test('beta ≥ 1 under the beta_sweep objective is SC4002 (its loss weighs the reconstruction by 1 − β: training drove it up), allowed for the H objective', () => {
    expect(diag('models/reference2d.vae', { beta: 1.5 })).toMatch(/error\[SC4002\]: with the beta_sweep objective beta must lie in \(0, 1\)[^]*= note: beta = 1.5 is given by --set beta=1.5$/);
    expect(() => compileModelFile('models/reference2d.vae', { overrides: { beta: 4, objective: 'h', size: [32, 32], channels: [4, 8], latent: 4 } })).not.toThrow();
  });
  test('a generate entry that reads the image input is SC4005 at the entry (generate failed later with no location)', () => {
    const src = readFileSync('test/models/tiny.vae', 'utf8');
    expect(src).toMatch(/entry generate\(ref, cls\)/);
    const file = variant('gen_image', src.replace('entry generate(ref, cls)', 'entry generate(cells, ref, cls)'));
    expect(diag(file)).toMatch(/gen_image\.vae:\d+:\d+: error\[SC4005\]: .*a generator takes only the conditions \(reference and label inputs\), not the image it generates; cells is the model's image input/);
  });
});

describe("a model instance's override of the wrong type points at the user's argument", () => {
  test('StatCell(dims = "two"): SC4001 at "two" in the user\'s file, the declaration a note (it was at statcell.vae alone)', () => {
    const file = variant('wrongtype', `import "${relative(VARIANTS, 'models/statcell.vae')}"\nmodel X = StatCell(dims = "two")\n`);
    const msg = diag(file);
    expect(msg).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2:27: error\\[SC4001\\]: parameter 'dims' got "two" \\(string\\), which is not of type int\n`));
    expect(msg).toMatch(/\n2 \| model X = StatCell\(dims = "two"\)\n {2}\| {27}\^{5}\n/);
    expect(msg).toMatch(/= note: dims is declared at \S*models\/statcell\.vae:\d+:3$/);
  });
});

describe('diagnostics are bounded', () => {
  const at = (line: number, col: number, len = 1) => ({ file: 'f.vae', line, col, endLine: line, endCol: col + len, offset: 0, endOffset: 0 });
  test(`a long line is quoted as at most ${MAX_QUOTED_COLUMNS} columns around the caret, with … marks, the caret under its character`, () => {
    const line = `${'a'.repeat(5000)}XYZ${'b'.repeat(5000)}`;
    const shown = renderDiagnostic(diagnostic('SC2001', at(1, 5001, 3), "unknown name 'XYZ'"), { 'f.vae': line }).split('\n');
    expect(shown[2].length).toBeLessThanOrEqual(MAX_QUOTED_COLUMNS + 6);
    expect(shown[2]).toMatch(/^1 \| …a+XYZb+…$/);
    expect(shown[3].indexOf('^')).toBe(shown[2].indexOf('XYZ'));
    expect(shown[3]).toMatch(/\^{3}$/);
    // Near the start or the end of the line, only the side that is cut has a mark.
    expect(renderDiagnostic(diagnostic('SC2001', at(1, 2), 'x'), { 'f.vae': line }).split('\n')[2]).toMatch(/^1 \| a+…$/);
    const end = renderDiagnostic(diagnostic('SC2001', at(1, line.length), 'x'), { 'f.vae': line }).split('\n');
    expect(end[2]).toMatch(/^1 \| …b+$/);
    expect(end[3].indexOf('^')).toBe(end[2].length - 1);
  });
  test('bidirectional overrides, zero-width and C1 control characters are shown as U+FFFD, control characters as symbols', () => {
    const shown = renderDiagnostic(diagnostic('SC2001', at(1, 11), 'x'), { 'f.vae': 'a\u202eb\u200bc\u0085d\x1be x' }).split('\n');
    expect(shown[2]).toBe('1 | a\ufffdb\ufffdc\ufffdd\u241be x');
    expect(shown[3].indexOf('^')).toBe(shown[2].indexOf('x'));
  });
  test(`after ${MAX_RENDERED_DIAGNOSTICS} diagnostics one line says how many more`, () => {
    const ds = Array.from({ length: 49 }, (_, i) => diagnostic('SC1001', at(1, 1), `error ${i}`));
    const text = renderDiagnostics(ds, { 'f.vae': 'x' });
    expect(text.match(/error\[SC1001\]/g)).toHaveLength(MAX_RENDERED_DIAGNOSTICS);
    expect(text.endsWith(`\n\n… and ${49 - MAX_RENDERED_DIAGNOSTICS} more errors`)).toBe(true);
    expect(new DiagnosticError(ds).message.split('\n')).toHaveLength(MAX_RENDERED_DIAGNOSTICS + 1);
  });
  test('4,000 random bytes compile to a few kilobytes of diagnostics (it printed 468 KB)', () => {
    let seed = 7;
    const bytes = Buffer.from(Array.from({ length: 4000 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff));
    const text = bytes.toString('utf8');
    let msg = '';
    try {
      compileModel({ 'g.vae': text }, 'g.vae');
    } catch (e) {
      msg = (e as DiagnosticError).message;
    }
    expect(msg).toMatch(/error\[SC1/);
    expect(msg.length).toBeLessThan(20000);
    expect(msg).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
  });
  test(`100,000 brackets, and a 200,000-term sum: one SC1006 each, at the token past the limit (the sum was 400 KB and 775 MB)`, () => {
    const one = (text: string) => {
      try {
        compileModel({ 'm.vae': text }, 'm.vae');
      } catch (e) {
        return e as DiagnosticError;
      }
      throw new Error('compiled');
    };
    const br = one(`model M() {\n  y = ${'('.repeat(100000)}\n}\n`);
    expect(br.diagnostics.map((d) => d.code)).toEqual(['SC1006']);
    expect(br.message.length).toBeLessThan(1000);
    const t0 = performance.now();
    const sum = one(`model M() {\n  y = ${Array(200000).fill('1').join('+')}\n}\n`);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(sum.diagnostics.map((d) => [d.code, d.span.line, d.span.col])).toEqual([['SC1006', 2, 8 + 2 * MAX_CHAIN]]);
    expect(sum.message).toMatch(/an expression chains more operators than the compiler allows \(limit: 1,000 in one expression\)/);
    expect(sum.message.length).toBeLessThan(1000);
    // At the limit it is an expression like any other.
    expect(() => compileModel({ 'm.vae': `const k = ${Array(MAX_CHAIN + 1).fill('1').join('+')}\nmodel M() {\n  input x: [B, 4] as label\n  entry f(x) -> [B, 4] { return x * k }\n}\n` }, 'm.vae')).not.toThrow();
  });
});

describe('--set errors point at the command line', () => {
  test('a string where an int is needed', () => {
    const msg = diag('models/reference2d.vae', parseSet('latent=abc'));
    expect(msg).toMatch(/^--set latent=abc: error\[SC4001\]: parameter 'latent' got "abc" \(string\), but latent is an int\n {2}= note: latent is declared at models\/statcell\.vae:\d+:\d+$/);
  });
  test('numbers JSON does not write are numbers (--set beta=.3 was refused as a string)', () => {
    expect(parseSet('beta=.3')).toEqual({ beta: 0.3 });
    expect(parseSet('lr=2.')).toEqual({ lr: 2 });
    expect(parseSet('latent=+8')).toEqual({ latent: 8 });
    expect(parseSet('name=.x')).toEqual({ name: '.x' });
  });
  test('a list without brackets', () => {
    const msg = diag('models/reference2d.vae', parseSet('size=64,40'));
    expect(msg).toMatch(/^--set size=64,40: error\[SC4001\]: .*size is a list of ints \(\[int\]\); write --set size=\[64,40\]\n {2}= note: size is declared at models\/statcell\.vae:\d+:\d+$/);
    expect(diag('models/reference2d.vae', parseSet('channels=16,32'))).toMatch(/^--set channels=16,32: .*; write --set channels=\[16,32\]\n/);
    const strs = variant('strs', 'model S(names: [str] = ["a"]) { }\n');
    expect(diag(strs, parseSet('names=membrane,dna'))).toMatch(/^--set names=membrane,dna: .*names is a list of strings \(\[str\]\); write --set 'names=\["membrane","dna"\]'\n {2}= note: names is declared at .*strs\.vae:1:9$/);
  });
  test('the brackets fix it', () => {
    expect(compileModelFile('models/reference2d.vae', { overrides: parseSet('size=[64,32]') }).config.size).toEqual([64, 32]);
  });
  test('non-finite numbers are refused', () => {
    expect(JSON.parse('1e309')).toBe(Infinity); // what parseSet has to catch
    expect(() => parseSet('lr=1e309')).toThrow(/^--set lr=1e309: 1e309 is beyond ±1\.8e308.*give a finite number/);
    expect(() => parseSet('size=[64,-1e999]')).toThrow(/a number in the list is beyond/);
    expect(parseSet('lr=1e-3')).toEqual({ lr: 1e-3 });
  });
});

describe('the code table', () => {
  test('docs/language.md lists every code once, and only codes of the table', () => {
    const rows = [...readFileSync('docs/language.md', 'utf8').matchAll(/^\| (SC\d{4}) \|/gm)].map((m) => m[1]);
    expect([...rows].sort()).toEqual(Object.keys(CODES).sort());
  });
  test('a message is its template with the holes filled', () => {
    expect(formatMessage('SC2004', { owner: 'layer conv', name: 'kk' })).toBe("layer conv has no parameter 'kk'");
    expect(formatMessage('SC2004', { owner: 'block Down', name: 'skp', input: true })).toBe("block Down has no input 'skp'");
    expect(formatMessage('SC3004', { dividend: 25, divisor: 2, what: 'the output of block Down', size: 'S/2' })).toBe('the output of block Down: S/2 is not a whole size (25 is not divisible by 2)');
  });
  test('what used to be plain errors are diagnostics with a code and a span', () => {
    const m = compileModelFile(variant('plain', block('  return x |> c: conv(cout, k = 3, pad = 1)')));
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(DiagnosticError);
        return (e as DiagnosticError).message;
      }
      throw new Error('no diagnostic');
    };
    expect(thrown(() => m.entry('ff', 2))).toMatch(/plain\.vae:4:7: error\[SC5001\]: model M has no entry 'ff' \(entries: f\)\n[^]*= note: did you mean 'f'\?/);
    expect(thrown(() => m.trainStep(2))).toMatch(/plain\.vae:4:7: error\[SC5001\]: model M has no training step/);
    expect(thrown(() => m.applyStep!())).toMatch(/error\[SC5001\]: model M has no training step/);
    const shared = variant('shared', 'model M {\n  input x: [B, 2, 4]\n  l = conv(4, k = 1)\n  entry f(x) -> [B, 4, 4] { return x |> l |> l }\n}\n');
    expect(diag(shared)).toMatch(/shared\.vae:4:46: error\[SC3012\]: l\.weight: used with shapes \[4, 2, 1\] and \[4, 4, 1\]/);
    expect(diag(variant('noise', `const z = randn([2])\n${block('  return x |> c: conv(cout, k = 3, pad = 1)')}`))).toMatch(/noise\.vae:1:11: error\[SC4017\]: randn draws anew/);
  });
});

describe('the backend line', () => {
  const wasm = { kind: 'wasm' as const, description: 'WebAssembly SIMD, 2 threads' };
  test('names a software adapter as such and says how to use it', () => {
    expect(backendReason('auto', wasm, { name: 'google swiftshader SwiftShader driver 5.0.0', software: true })).toBe(
      'backend wasm (WebAssembly SIMD, 2 threads): WebGPU has only a software adapter (google swiftshader SwiftShader driver 5.0.0), which is slower than Wasm here; --backend webgpu uses it',
    );
    expect(backendReason('auto', wasm, null)).toBe('backend wasm (WebAssembly SIMD, 2 threads): no WebGPU adapter was found');
    expect(backendReason('auto', { kind: 'webgpu', description: 'nvidia hopper' }, { name: 'nvidia hopper', software: false })).toMatch(/: a hardware GPU adapter was found$/);
    expect(backendReason('wasm', wasm)).toMatch(/: chosen explicitly$/);
    // Asked for by name, a software adapter is said to be slow (a 1 s Wasm eval took 3 minutes on it, silently).
    expect(backendReason('webgpu', { kind: 'webgpu', description: 'google swiftshader SwiftShader driver 5.0.0 (software)' })).toBe(
      'backend webgpu (google swiftshader SwiftShader driver 5.0.0 (software)): chosen explicitly; a software adapter: expect it to run far slower than --backend wasm on this machine',
    );
    expect(backendReason('webgpu', { kind: 'webgpu', description: 'nvidia hopper' })).toBe('backend webgpu (nvidia hopper): chosen explicitly');
  });
  // Dawn and the Vulkan loader print from native code to fd 2: only a child process shows what reaches the terminal.
  const open = (choice: string, env: Record<string, string> = {}) => {
    const code = "import { openBackend } from './runtime/device.ts'; const o = await openBackend(process.argv[1]); process.stdout.write(o.reason + '\\n'); o.backend.destroy(); process.exit(0);";
    const env0 = { ...process.env };
    delete env0.STATCELL_VERBOSE;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, choice], { cwd: process.cwd(), encoding: 'utf8', env: { ...env0, ...env }, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    return r;
  };
  test.each(['auto', 'webgpu'])('--backend %s: no driver output on stderr, the truth on the backend line', (choice) => {
    const r = open(choice);
    expect(r.stderr).not.toMatch(/vkCreateInstance|VK_ERROR|Warning:|dawn/i);
    if (choice === 'auto' && /software adapter/.test(r.stdout)) expect(r.stdout).toMatch(/WebGPU has only a software adapter \(.+\), which is slower than Wasm here; --backend webgpu uses it/);
    if (choice === 'webgpu' && /swiftshader/i.test(r.stdout)) expect(r.stdout).toMatch(/\(software\)\): chosen explicitly/);
  });
  test('STATCELL_VERBOSE=1 lets the driver output through', () => {
    const quiet = open('auto');
    const loud = open('auto', { STATCELL_VERBOSE: '1' });
    expect(loud.stdout).toBe(quiet.stdout);
    // SwiftShader as the fallback means the system's Vulkan failed first, which the loader reports.
    if (/only a software adapter \(.*swiftshader/i.test(quiet.stdout) && !process.env.VK_ICD_FILENAMES) expect(loud.stderr).toMatch(/warning|vulkan|vk/i);
  });
});

describe('an input whose role does not fit its shape', () => {
  test('is SC3007 at the input, before the errors it causes downstream (an SC3003 in the training step hid it)', () => {
    const src = readFileSync('test/models/tiny.vae', 'utf8');
    const m = /input cells: \[B, n, \.\.\.size\] as image\(image_channels\)/;
    expect(src).toMatch(m);
    const file = variant('role_shape', src.replace(m, 'input cells: [B, 3, ...size] as image("membrane", "dna")'));
    expect(diag(file)).toMatch(/role_shape\.vae:\d+:\d+: error\[SC3007\]/);
  });
});
