// Roles: what the tools feed and call. Input roles (`input x: [...] as image("membrane", "dna")`,
// `as reference(…)`, `as label`) name the data an input is fed from; entry roles (encode, decode,
// generate; an entry so named has that role unless it says `as …`) are contracts on an entry's
// inputs and outputs, checked on a build of it.

import type * as A from '../dsl/ast.ts';
import type { RoleContract } from '../dsl/diagnostics.ts';
import { fail } from './context.ts';
import type { EntryGraph, EntryRoles, InputRole, ModelInput } from './model.ts';
import { shapeText } from './text.ts';
import type { Val } from './values.ts';

/** Entry roles the tools call (compiler/model.ts EntryRoles). */
export const ENTRY_ROLES = ['encode', 'decode', 'generate'] as const;
/** Input roles and the data channels they may name. */
export const INPUT_ROLES = ['image', 'reference', 'label'] as const;
export const DATA_CHANNELS = ['membrane', 'dna', 'structure'] as const;

/** `as image("membrane", "dna")` / `as reference(channels)` / `as label`; shapes are checked in `describeInput`. */
export function inputRole(s: A.InputStmt, evalArg: (e: A.Expr) => Val): InputRole {
  const { name, args } = s.role!;
  if (!(INPUT_ROLES as readonly string[]).includes(name.name)) fail('SC2009', name.span, { role: name.name, of: 'input' }, [`input roles: ${INPUT_ROLES.join(', ')}`]);
  if (name.name === 'label') {
    if (args.length) fail('SC4015', name.span, { label: true });
    return { kind: 'label', classes: 0 };
  }
  const vals = args.map((a) => evalArg(a.value));
  const channels = (vals.length === 1 && Array.isArray(vals[0]) ? vals[0] : vals) as Val[];
  const bad = channels.find((c) => typeof c !== 'string' || !(DATA_CHANNELS as readonly string[]).includes(c));
  if (!channels.length || bad !== undefined)
    fail('SC4015', args[0]?.span ?? name.span, { role: name.name, notAChannel: bad !== undefined ? JSON.stringify(bad) : undefined }, [`data channels: ${DATA_CHANNELS.map((c) => JSON.stringify(c)).join(', ')}, e.g. as ${name.name}("membrane", "dna")`]);
  return { kind: name.name as 'image' | 'reference', channels: channels as string[] };
}

/** A model input with its role, the role checked against the input's shape (SC3007). */
export function describeInput(s: A.InputStmt, shape: number[], role: InputRole | undefined): ModelInput {
  if (role?.kind === 'label') {
    if (shape.length !== 2) fail('SC3007', s.shape.span, { label: shapeText(s.shape as A.ShapeType) });
    role = { kind: 'label', classes: shape[1] };
  } else if (role && (shape.length < 3 || shape[1] !== role.channels.length))
    fail('SC3007', s.role!.name.span, { input: s.name.name, declared: shapeText(s.shape as A.ShapeType), shape, role: role.kind, channels: role.channels }, ['an image input is [B, channels, ...spatial], one name per channel']);
  return { name: s.name.name, itemShape: shape.slice(1), role };
}

/**
 * Entry points by role, each role's contract checked on the entry's batch-2 build (`build`);
 * `inputRoles`: the model inputs' roles (a generator must not read the image it generates).
 */
export function entryRoles(entries: ReadonlyMap<string, A.EntryStmt>, inputRoles: ReadonlyMap<string, InputRole>, build: (name: string) => EntryGraph): EntryRoles {
  const roles: EntryRoles = {};
  const taken = new Map<string, string>();
  for (const [name, e] of entries) {
    const role = e.role?.name ?? ((ENTRY_ROLES as readonly string[]).includes(name) ? name : undefined);
    if (!role) continue;
    const span = e.role?.span ?? e.name.span;
    if (!(ENTRY_ROLES as readonly string[]).includes(role)) fail('SC2009', span, { role, of: 'entry' }, [`entry roles: ${ENTRY_ROLES.join(', ')}`]);
    if (taken.has(role)) fail('SC2010', span, { first: taken.get(role)!, second: name, role });
    taken.set(role, name);
    const g = build(name);
    const broken: (problem: RoleContract) => never = (problem) => fail('SC4005', span, { entry: name, role, ...problem });
    // An entry's own inputs are its parameters with a shape (debug noise inputs are not).
    const own = new Set(e.params.filter((p) => p.shape).map((p) => p.name.name));
    const latents = g.inputs.filter((i) => own.has(i.name));
    if (role === 'encode') {
      if (g.outputs.length !== 2) broken({ problem: 'encoder outputs', count: g.outputs.length });
      const [m, lv] = g.outputs.map((o) => g.graph.outputs.get(o)!.shape);
      if (m.length !== 2 || m.join() !== lv.join()) broken({ problem: 'encoder shapes', mean: m, logvar: lv });
      roles.encode = { entry: name, mean: g.outputs[0], logvar: g.outputs[1] };
    } else if (role === 'decode') {
      if (latents.length !== 1 || latents[0].shape.length !== 2) broken({ problem: 'decoder latents', latents });
      if (g.outputs.length !== 1) broken({ problem: 'decoder outputs', count: g.outputs.length });
      roles.decode = { entry: name, latent: latents[0].name, output: g.outputs[0] };
    } else {
      if (latents.length) broken({ problem: 'generator latents', latents: latents.map((l) => l.name) });
      const images = g.inputs.filter((i) => inputRoles.get(i.name)?.kind === 'image').map((i) => i.name);
      if (images.length) broken({ problem: 'generator images', images });
      if (g.outputs.length !== 1) broken({ problem: 'generator outputs', count: g.outputs.length });
      roles.generate = { entry: name, output: g.outputs[0] };
    }
  }
  return roles;
}

