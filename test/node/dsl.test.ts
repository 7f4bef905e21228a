// The model language's front end: the paper's model files parse cleanly and name their layers as
// the checkpoints do; spans point at the right characters; broken sources give the right code
// at the right place; recovery reports every syntax error in one run; the renderer's format.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { forEachExpr, parse, renderDiagnostic, diagnostic, type BlockDecl, type Expr, type ModelDecl, type ModelInstance, type Program, type Stmt } from '../../dsl/index.ts';
import { loadModule } from '../../dsl/load.ts';
import { compileModel } from '../../compiler/index.ts';
import { DiagnosticError } from '../../dsl/diagnostics.ts';

const MODELS = ['reference2d', 'target2d', 'reference3d', 'target3d'];

function block(p: Program, name: string): BlockDecl {
  const b = p.decls.find((d): d is BlockDecl => d.kind === 'Block' && d.name.name === name);
  if (!b) throw new Error(`no block ${name}`);
  return b;
}

function exprsOf(stmts: Stmt[], out: Expr[] = []): Expr[] {
  for (const s of stmts) {
    if (s.kind === 'Assign' || s.kind === 'Const') out.push(s.value);
    if (s.kind === 'Return' || s.kind === 'Report') out.push(...s.values);
    if (s.kind === 'For') { out.push(s.iterable); exprsOf(s.body, out); }
    if (s.kind === 'If') { out.push(s.test); exprsOf(s.then, out); if (s.else) exprsOf(s.else, out); }
    if (s.kind === 'Entry' || s.kind === 'Train') exprsOf(s.body, out);
    if (s.kind === 'Minimize') out.push(s.loss);
  }
  return out;
}

/** Instance names in a body, loop-indexed ones written `down{i}`. */
function labels(stmts: Stmt[]): string[] {
  const names: string[] = [];
  for (const e of exprsOf(stmts)) forEachExpr(e, (x) => { if (x.kind === 'Labeled') names.push(x.label.index ? `${x.label.base}{${x.label.index.name}}` : x.label.base); });
  return names;
}

function codesAt(src: string): string[] {
  return parse(src, 't.vae').diagnostics.map((d) => `${d.code}@${d.span.line}:${d.span.col}`);
}

describe('the paper model files', () => {
  test.each(MODELS)('%s.vae and the library it imports parse with no diagnostics', (name) => {
    const r = loadModule(`models/${name}.vae`);
    expect(r.diagnostics.map((d) => renderDiagnostic(d, r.sources))).toEqual([]);
    expect([...r.programs.keys()]).toEqual(['models/statcell.vae', `models/${name}.vae`]);
    const inst = r.programs.get(`models/${name}.vae`)!.decls.find((d) => d.kind === 'ModelInstance') as ModelInstance;
    expect(inst.template.name).toBe('StatCell');
    const o = Object.fromEntries(inst.overrides.map((a) => [a.name!.name, a.value]));
    const dims = name.endsWith('3d') ? 3 : 2;
    expect(o.dims).toMatchObject({ kind: 'Number', value: dims });
    expect((o.size as { elements: { value: number }[] }).elements.map((e) => e.value)).toEqual(dims === 3 ? [160, 96, 64] : [160, 96]);
    if (name.startsWith('target')) expect((o.image_channels as { elements: { value: string }[] }).elements.map((e) => e.value)).toEqual(['structure']);
    else expect(o.image_channels).toBeUndefined(); // the template's default: membrane, DNA
    expect(o.conditioned).toMatchObject({ kind: 'Bool', value: name.startsWith('target') });
  });

  const lib = loadModule('models/statcell.vae').programs.get('models/statcell.vae')!;

  test('the template declares overridable parameters with the paper defaults', () => {
    const m = lib.decls.find((d): d is ModelDecl => d.kind === 'Model')!;
    expect(m.name.name).toBe('StatCell');
    const p = Object.fromEntries(m.params.map((x) => [x.name.name, x]));
    for (const k of ['dims', 'size', 'image_channels', 'conditioned', 'reference_channels', 'classes', 'channels', 'latent', 'objective', 'beta', 'warmup']) expect(p[k], k).toBeDefined();
    expect(p.latent.default).toMatchObject({ value: 512 });
    expect(p.classes.default).toMatchObject({ value: 24 });
    expect(p.channels.type).toMatchObject({ kind: 'ListType', element: { name: 'int' } });
    expect(p.objective.type).toMatchObject({ kind: 'UnionType', options: [{ value: 'beta_sweep' }, { value: 'h' }] });
    const kinds = m.body.filter((s) => s.kind === 'Entry' || s.kind === 'Train').map((s) => `${s.kind}:${(s as { name: { name: string } }).name.name}`);
    expect(kinds).toEqual(['Entry:encode', 'Entry:decode', 'Entry:generate', 'Train:step']);
    expect(m.body.filter((s) => s.kind === 'Input').map((s) => (s as { name: { name: string } }).name.name)).toEqual(['x', 'ref', 'cls']);
  });

  test('layer instance names are the checkpoint names', () => {
    expect(labels(block(lib, 'Cond').body)).toEqual(['conv', 'bn']);
    expect(labels(block(lib, 'Down').body)).toEqual(['bypass', 'conv1', 'bn1', 'conv2', 'bn2', 'cond_ref', 'cond_class']);
    expect(labels(block(lib, 'Up').body)).toEqual(['bypass', 'conv1', 'bn1', 'conv2', 'bn2', 'cond_ref', 'cond_class']);
    expect(labels(block(lib, 'Encoder').body)).toEqual(['down{i}', 'fc_mu', 'fc_logvar']);
    expect(labels(block(lib, 'Decoder').body)).toEqual(['fc', 'bn0', 'up{i}']);
  });

  test('every module name in the golden fixture is an instance name in the library', () => {
    const buf = readFileSync(new URL('../golden/model_target2d_small.safetensors', import.meta.url));
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
    const segments = new Set<string>();
    for (const key of Object.keys(header)) {
      if (!key.startsWith('param/')) continue;
      const parts = key.slice('param/'.length).split('.');
      parts.slice(1, -1).forEach((s) => segments.add(s.replace(/^(down|up)\d+$/, '$1{i}'))); // drop enc./dec. and the tensor
    }
    const named = new Set(lib.decls.flatMap((d) => (d.kind === 'Block' ? labels(d.body) : [])));
    expect(segments.size).toBeGreaterThan(10);
    for (const s of segments) expect(named.has(s), s).toBe(true);
    // enc and dec are the model's bindings of Encoder and Decoder.
    const m = lib.decls.find((d): d is ModelDecl => d.kind === 'Model')!;
    const bound = m.body.filter((s) => s.kind === 'Assign').map((s) => (s as { targets: { name: string }[] }).targets[0].name);
    expect(bound).toEqual(['n_in', 'enc', 'dec']);
  });

  test('Down states only output sizes and checks shapes with named sizes', () => {
    const d = block(lib, 'Down');
    expect(d.params.map((p) => p.name.name)).toEqual(['cout']);
    expect(d.inputs.map((i) => [i.name.name, i.optional])).toEqual([['x', false], ['ref', true], ['cls', true]]);
    expect(d.output).toMatchObject({ kind: 'ShapeType', dims: [{ kind: 'Name', name: 'B' }, { kind: 'Name', name: 'cout' }, { kind: 'Spread', argument: { kind: 'Binary', op: '/', left: { name: 'S' }, right: { value: 2 } } }] });
  });
});

describe('spans', () => {
  const src = [
    'block Half(cout: int)(x: [B, C, ...S]) -> [B, cout, ...S/2] {',
    '  y = x |> avgpool(2)',
    '     |> conv1: conv(cout, k = 1)',
    '  return relu(y)',
    '}',
  ].join('\n');
  const r = parse(src, 'half.vae');
  const b = r.program.decls[0] as BlockDecl;

  test('no diagnostics', () => expect(r.diagnostics).toEqual([]));

  test('declaration, name, parameter and shape spans', () => {
    expect(b.span).toMatchObject({ file: 'half.vae', line: 1, col: 1, endLine: 5, endCol: 2 });
    expect(b.name.span).toMatchObject({ line: 1, col: 7, endLine: 1, endCol: 11, offset: 6, endOffset: 10 });
    expect(b.params[0].span).toMatchObject({ line: 1, col: 12, endCol: 21 });
    expect(b.inputs[0].shape!.span).toMatchObject({ line: 1, col: 26, endCol: 38 });
    expect(b.output.span).toMatchObject({ line: 1, col: 43, endCol: 60 });
    expect(src.slice(b.output.span.offset, b.output.span.endOffset)).toBe('[B, cout, ...S/2]');
  });

  test('a pipe spans lines; its stages keep their own spans', () => {
    const assign = b.body[0];
    if (assign.kind !== 'Assign') throw new Error(assign.kind);
    const pipe = assign.value;
    expect(pipe).toMatchObject({ kind: 'Pipe', span: { line: 2, col: 7, endLine: 3, endCol: 33 } });
    if (pipe.kind !== 'Pipe') throw new Error(pipe.kind);
    expect(pipe.stage).toMatchObject({ kind: 'Labeled', label: { base: 'conv1', span: { line: 3, col: 9, endCol: 14 } }, span: { line: 3, col: 9 } });
    expect(pipe.input).toMatchObject({ kind: 'Pipe', stage: { kind: 'Call', callee: { name: 'avgpool' }, span: { line: 2, col: 12, endCol: 22 } } });
    const ret = b.body[1];
    expect(ret).toMatchObject({ kind: 'Return', span: { line: 4, col: 3, endCol: 17 }, values: [{ kind: 'Call', span: { col: 10 } }] });
  });

  test('spans in the model library point at the text they cover', () => {
    const file = 'models/statcell.vae';
    const text = readFileSync(file, 'utf8');
    const lib = parse(text, file).program;
    const lines = text.split('\n');
    for (const d of lib.decls) {
      if (d.kind !== 'Block' && d.kind !== 'Model') continue;
      const s = d.name.span;
      expect(lines[s.line - 1].slice(s.col - 1, s.endCol - 1)).toBe(d.name.name);
      expect(text.slice(s.offset, s.endOffset)).toBe(d.name.name);
    }
    const upLabel = labels(block(lib, 'Decoder').body);
    expect(upLabel).toContain('up{i}');
  });
});

describe('expressions', () => {
  const value = (src: string): Expr => {
    const r = parse(`const X = ${src}`, 'e.vae');
    expect(r.diagnostics).toEqual([]);
    return (r.program.decls[0] as { value: Expr }).value;
  };

  test('precedence: pipes loosest, ** tighter than unary minus and right-associative', () => {
    expect(value('a + b * c ** 2 ** 3')).toMatchObject({ op: '+', right: { op: '*', right: { op: '**', left: { name: 'c' }, right: { op: '**' } } } });
    expect(value('-2 ** 2')).toMatchObject({ kind: 'Unary', op: '-', operand: { op: '**' } });
    expect(value('a + b |> relu |> f(1)')).toMatchObject({ kind: 'Pipe', input: { kind: 'Pipe', input: { op: '+' }, stage: { name: 'relu' } }, stage: { kind: 'Call' } });
    expect(value('0..len(xs)')).toMatchObject({ kind: 'Range', start: { value: 0 }, end: { kind: 'Call' } });
    expect(value('not a and b or c')).toMatchObject({ op: 'or', left: { op: 'and', left: { kind: 'Unary', op: 'not' } } });
  });

  test('conditionals, curried calls, named arguments, indexing, spreads, loop instance names', () => {
    expect(value('if last then n_out else channels[n - 2 - i]')).toMatchObject({ kind: 'Conditional', test: { name: 'last' }, else: { kind: 'Index', object: { name: 'channels' } } });
    const call = value('up{i}: Up(c, act = "softplus")(h, ref = r)');
    expect(call).toMatchObject({
      kind: 'Labeled', label: { base: 'up', index: { name: 'i' } },
      expr: { kind: 'Call', callee: { kind: 'Call', callee: { name: 'Up' }, args: [{ value: { name: 'c' } }, { name: { name: 'act' }, value: { value: 'softplus' } }] }, args: [{}, { name: { name: 'ref' } }] },
    });
    expect(value('[B, K, ...repeat(1, len(S)),]')).toMatchObject({ kind: 'List', elements: [{ name: 'B' }, { name: 'K' }, { kind: 'Spread', argument: { kind: 'Call' } }] });
    expect(value('"a\\"b"')).toMatchObject({ kind: 'String', value: 'a"b' });
    expect(value('3e-5')).toMatchObject({ kind: 'Number', value: 3e-5, isInteger: false });
  });
});

describe('the examples of docs/*.md', () => {
  // Every ```vae block is a model file as written, saved in models/ (so its imports find the
  // paper's files): it loads with no diagnostics, one that declares a model compiles, and one
  // headed `# models/X.vae` compiles to X's configuration. Nothing compiled them before, so
  // docs/language.md's Target3D kept parameters StatCell no longer has (n_in, ref_channels).
  const examples = readdirSync('docs').filter((f) => f.endsWith('.md')).flatMap((f) => {
    const md = readFileSync(`docs/${f}`, 'utf8');
    return [...md.matchAll(/^```vae\n([^]*?)^```$/gm)].map((m) => [`docs/${f}:${md.slice(0, m.index).split('\n').length}`, m[1]] as const);
  });

  test('docs/language.md has its examples tagged vae (the paper model, a variant, an instance)', () => {
    expect(examples.filter(([at]) => at.startsWith('docs/language.md:')).length).toBeGreaterThanOrEqual(6);
  });

  test.each(examples)('%s', (_at, text) => {
    const entry = 'models/doc-example.vae';
    const files = (f: string) => (f === entry ? text : readFileSync(f, 'utf8'));
    const r = loadModule(entry, files);
    expect(r.diagnostics.map((d) => renderDiagnostic(d, r.sources))).toEqual([]);
    if (!/^model /m.test(text)) return;
    const m = compileModel(files, entry);
    const file = /^# (models\/\S+\.vae)$/m.exec(text)?.[1];
    if (!file) return;
    const real = compileModel(files, file);
    expect([m.name, m.config]).toEqual([real.name, real.config]);
  });
});

describe('calls, compiled', () => {
  // A model whose encoder returns `ret` from f = flatten(x) [B, 128], after the blocks `blocks`.
  const compile = (blocks: string, ret: string, width = 128) =>
    compileModel({ 'c.vae': `${blocks}\nmodel M() {\n  input x: [B, 2, 8, 8] as image("membrane", "dna")\n  entry encode(x) -> (a: [B, ${width}], b: [B, ${width}]) {\n    f = flatten(x)\n    return ${ret}\n  }\n}\n` }, 'c.vae');
  const error = (blocks: string, ret: string, width?: number): string => {
    try {
      compile(blocks, ret, width);
    } catch (e) {
      if (e instanceof DiagnosticError) return e.message;
      throw e;
    }
    throw new Error('compiled');
  };
  const head = 'block Head(x: [B, C]) -> [B, C] { return relu(x) }';
  const lin = 'block Lin(x: [B, C]) -> [B, 4] { return x |> l: linear(4) }';

  test('a block without parameters or weights: Head(f), Head()(f) and f |> Head, with no instance name (SC2016 "takes 0 parameter(s)", SC2002, SC2008 before)', () => {
    for (const ret of ['Head(f), Head(f)', 'Head()(f), f |> Head', 'h1: Head()(f), f |> h2: Head'])
      expect(() => compile(head, ret), ret).not.toThrow();
    // Its inputs by name too, from a pipe or a call.
    expect(() => compile('block Add(x: [B, C], y: [B, C]) -> [B, C] { return x + y }', 'f |> Add(y = f), Add(f, f)')).not.toThrow();
  });

  test('a named layer applied by a call: l1: linear(4)(f) (SC2016 "takes one tensor" when given one)', () => {
    expect(compile('', 'l1: linear(4)(f), f |> l2: linear(4)', 4).tensors.map((t) => t.name)).toEqual(['l1.weight', 'l1.bias', 'l2.weight', 'l2.bias']);
    expect(error('', 'l1: linear(4)(f, f), l2: linear(4)(f)', 4)).toMatch(/c\.vae:6:16: error\[SC2016\]: layer linear takes one tensor\n[^]*= note: write l1: linear\(…\)\(x\) or x \|> l1: linear\(…\)/);
  });

  test('a block with weights needs an instance name, at the call, saying which layer holds them', () => {
    expect(compile(lin, 'a: Lin(f), f |> b: Lin', 4).tensors.map((t) => t.name)).toEqual(['a.l.weight', 'a.l.bias', 'b.l.weight', 'b.l.bias']);
    expect(error(lin, 'Lin(f), Lin(f)', 4)).toMatch(/^c\.vae:6:12: error\[SC2008\]: block Lin needs an instance name \(`name: Lin\(…\)`\): the weights of its layer l: linear are named after it\n/);
    // Through a named block inside an unnamed one: the unnamed one is at fault.
    expect(error(`${lin}\nblock Outer(x: [B, C]) -> [B, 4] { return x |> o: Lin }`, 'Outer(f), Outer(f)', 4)).toMatch(/^c\.vae:7:12: error\[SC2008\]: block Outer needs/);
  });

  test('more arguments than parameters: SC2016 says what to write, and no empty list of parameters', () => {
    const d = 'block D(c: int)(x: [B, C]) -> [B, c] { return x |> l: linear(c) }';
    expect(error(d, 'a: D(4, f), b: D(4)(f)', 4)).toMatch(/error\[SC2016\]: block D takes 1 parameter\(s\), this is argument 2\n[^]*= note: parameters: c\n {2}= note: write D\(c\)\(x\): the compile-time parameters first, then the tensor inputs/);
  });
});

describe('diagnostics', () => {
  test.each([
    ['SC1001 unexpected token', 'block A(c: int)(x: [B]) -> [B] {\n  y = conv(c = )\n  return y\n}', ['SC1001@2:16']],
    ['SC1001 missing comma between arguments', 'const a = f(1 2)', ['SC1001@1:15']],
    ['SC1005 chained comparison', 'const a = x < y < z', ['SC1005@1:17']],
    ['SC1002 end of file inside a block', 'block A(x: [B]) -> [B] {\n  return x\n', ['SC1002@2:11']],
    ['SC1003 invalid character', 'const a = 1\nconst b = 2 @ 3', ['SC1003@2:13', 'SC1001@2:15']],
    ['SC1004 unterminated string', 'const a = "abc\nconst b = 1', ['SC1004@1:11']],
    ['SC1101 input in a block', 'block A(x: [B]) -> [B] {\n  input y: [B]\n  return x\n}', ['SC1101@2:3']],
    ['SC1101 return in a model', 'model M {\n  return 1\n}', ['SC1101@2:3']],
    ['SC1101 minimize in an entry', 'model M {\n  entry f(x) {\n    minimize x\n    return x\n  }\n}', ['SC1101@3:5']],
    ['SC1111 default on a tensor input', 'block A(x: [B] = 1) -> [B] { return x }', ['SC1111@1:18']],
    ['SC1102 duplicate block', 'block A(x: [B]) -> [B] { return x }\nblock A(x: [B]) -> [B] { return x }', ['SC1102@2:7']],
    ['SC1102 duplicate entry point', 'model M {\n  entry f(x) { return x }\n  entry f(x) { return x }\n}', ['SC1102@3:9']],
    ['SC1103 duplicate input', 'block A(c: int)(x: [B], c: [B]) -> [B] { return x }', ['SC1103@1:25']],
    ['SC1104 block without return', 'block A(x: [B]) -> [B] {\n  y = x\n}', ['SC1104@1:7']],
    ['SC1113 training step without minimize', 'model M {\n  train step(x) { y = x }\n}', ['SC1113@2:9']],
    ['SC1105 instance name on a number', 'block A(x: [B]) -> [B] { return a: 3 }', ['SC1105@1:33']],
    ['SC1106 parameter without type', 'model M(beta = 0.5) { }', ['SC1106@1:9']],
    ['SC1106 block input without shape', 'block A(x) -> [B] { return x }', ['SC1106@1:9']],
    ['SC1107 shape that is a type name', 'block A(x: int) -> [B] { return x }', ['SC1107@1:12']],
    ['SC1114 optional compile-time parameter', 'block A(c?: int)(x: [B]) -> [B] { return x }', ['SC1114@1:10']],
    ['SC1108 positional override', 'model R = StatCell(3, beta = 0.2)', ['SC1108@1:20']],
    ['SC1110 required after default', 'model M(a: int = 1, b: int) { }', ['SC1110@1:21']],
  ])('%s', (_name, src, expected) => {
    expect(codesAt(src)).toEqual(expected);
  });

  test('messages say what was expected and what was found', () => {
    const [d] = parse('block A(x: [B]) -> [B] {\n  y = conv(32 = 1)\n  return y\n}', 't.vae').diagnostics;
    expect(d.message).toBe("expected ')' but found '='");
    const [e] = parse('const a = )', 't.vae').diagnostics;
    expect(e.message).toBe("expected an expression but found ')'");
    const [f] = parse('blok A', 't.vae').diagnostics;
    expect(f.message).toBe("expected a declaration ('import', 'const', 'defaults', 'block' or 'model') but found 'blok'");
  });

  test('recovery: one run reports every syntax error', () => {
    const src = [
      'block A(x: [B]) -> [B] {',
      '  y = x +',
      '  return y',
      '}',
      'block B(x: [B]) -> [B] {',
      '  z = relu(x))',
      '  return z',
      '}',
      'model M(beta: float = ) {',
      '  input x: [B, 2]',
      '  entry f(x) { return x |> }',
      '}',
    ].join('\n');
    const r = parse(src, 'many.vae');
    const lines = r.diagnostics.map((d) => d.span.line);
    expect(r.ok).toBe(false);
    expect(r.diagnostics.every((d) => d.code === 'SC1001')).toBe(true);
    expect(new Set(lines)).toEqual(new Set([3, 6, 9, 11]));
    // The declarations after the errors are still in the tree.
    expect(r.program.decls.map((d) => (d as { name?: { name: string } }).name?.name)).toEqual(['A', 'B', 'M']);
  });

  test('recovery never throws and leaves no position undefined (100 mutated copies of the library)', () => {
    // Comments stripped, so that the mutations land in code.
    const src = readFileSync('models/statcell.vae', 'utf8').replace(/#[^\n]*/g, '');
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    let withErrors = 0;
    for (let t = 0; t < 100; t++) {
      let s = src;
      for (let k = 0; k < 3; k++) {
        const i = Math.floor(rnd() * s.length);
        s = rnd() < 0.5 ? s.slice(0, i) + s.slice(i + 1 + Math.floor(rnd() * 5)) : s.slice(0, i) + '({)]=,'[Math.floor(rnd() * 6)] + s.slice(i);
      }
      const r = parse(s, 'f.vae');
      if (!r.ok) withErrors++;
      // NaN positions would serialise as null.
      expect(JSON.stringify(r)).not.toContain('null');
      for (const d of r.diagnostics) expect(d.span.line >= 1 && d.span.col >= 1).toBe(true);
    }
    expect(withErrors).toBeGreaterThan(80);
  });

  test('imports: files load relative to the importer; missing files and cycles are reported', () => {
    const files: Record<string, string> = {
      'm/a.vae': 'import "lib/b.vae"\nimport "missing.vae"\nmodel A = T(x = 1)',
      'm/lib/b.vae': 'import "../a.vae"\nmodel T(x: int = 0) { }',
    };
    const read = (f: string) => { if (!(f in files)) throw new Error('ENOENT'); return files[f]; };
    const r = loadModule('m/a.vae', read);
    expect([...r.programs.keys()]).toEqual(['m/lib/b.vae', 'm/a.vae']);
    expect(r.diagnostics.map((d) => `${d.span.file}:${d.code}@${d.span.line}:${d.span.col}`)).toEqual(['m/a.vae:SC2003@2:8', 'm/lib/b.vae:SC2007@1:8']);
    expect(r.diagnostics[1].message).toBe('import cycle: m/a.vae → m/lib/b.vae → m/a.vae');
  });

  test('rendering: location, code, source line, caret under the span, call chain, notes', () => {
    const src = 'block A(x: [B]) -> [B] {\n  y = conv(32 = 1)\n  return y\n}';
    const [d] = parse(src, 'models/t.vae').diagnostics;
    expect(renderDiagnostic(d, { 'models/t.vae': src })).toBe([
      "models/t.vae:2:15: error[SC1001]: expected ')' but found '='",
      '  |',
      '2 |   y = conv(32 = 1)',
      '  |               ^',
    ].join('\n'));
    // The compiler's form: a shape error inside a block, with the chain of call sites.
    const lib = 'block Down(cout: int)(x: [B, C, ...S]) -> [B, cout, ...S/2] {\n  return x\n}';
    const span = (line: number, col: number, len: number) => ({ file: 'lib.vae', line, col, endLine: line, endCol: col + len, offset: 0, endOffset: 0 });
    const e = diagnostic('SC3001', span(2, 10, 1), 'block Down returns [B, C, ...S] but declares [B, cout, ...S/2]', {
      callStack: [{ block: 'Down', span: { ...span(9, 5, 4), file: 'enc.vae' } }, { block: 'Encoder', span: { ...span(3, 1, 7), file: 'model.vae' } }],
      notes: ['check the output sizes'],
    });
    expect(renderDiagnostic(e, new Map([['lib.vae', lib]]))).toBe([
      'lib.vae:2:10: error[SC3001]: block Down returns [B, C, ...S] but declares [B, cout, ...S/2]',
      '  |',
      '2 |   return x',
      '  |          ^',
      '  in block Down called at enc.vae:9:5',
      '  in block Encoder called at model.vae:3:1',
      '  = note: check the output sizes',
    ].join('\n'));
    // Multi-character spans are underlined in full; unknown sources still give the headline.
    const [s] = parse('const a = "abc', 'u.vae').diagnostics;
    expect(renderDiagnostic(s, { 'u.vae': 'const a = "abc' }).split('\n')[3]).toBe('  |           ^^^^');
    expect(renderDiagnostic(s, {}).split('\n')[0]).toBe('u.vae:1:11: error[SC1004]: string is not closed before the end of the line');
  });
});
