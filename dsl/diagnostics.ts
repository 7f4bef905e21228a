// Diagnostics: numbered codes (as AssemblyScript numbers its messages), spans, and a renderer:
//
//   models/x.vae:12:15: error[SC1001]: expected ')' but found '='
//      12 |   y = conv(32 = 1)
//         |               ^
//     in block Down called at models/statcell.vae:40:14
//
// Code ranges: SC1xxx syntax and structure, SC2xxx names, imports and roles, SC3xxx shapes,
// SC4xxx values and parameters, SC5xxx what the tools need of a model and of its data.
// `CODES` is the one table of them (as AssemblyScript's diagnosticMessages.json): each code has
// one meaning, a severity, a title and the template of its message, whose named holes the site
// that reports it fills (`report('SC2001', span, { name })`). docs/language.md lists them all.

/** A source range. Lines and columns are 1-based; the end is exclusive (endCol is the column
 * just after the last character). Offsets are 0-based character offsets into the file. */
export interface Span {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
  offset: number;
  endOffset: number;
}

export type Severity = 'error' | 'warning' | 'note';

/** A template without holes. */
type NoArgs = Record<string, never>;
type Shape = readonly number[];
const dims = (s: Shape): string => `[${s.join(', ')}]`;
/** `duplicate parameter 'c' (first declared at line 1, column 9)` (SC1102, SC1103). */
const duplicate = ({ what, name, line, col }: { what: string; name: string; line: number; col: number }): string =>
  `duplicate ${what} '${name}' (first declared at line ${line}, column ${col})`;

/** What an entry does wrong for its role (SC4005). */
export type RoleContract =
  | { problem: 'encoder outputs'; count: number }
  | { problem: 'encoder shapes'; mean: Shape; logvar: Shape }
  | { problem: 'decoder latents'; latents: { name: string; shape: Shape }[] }
  | { problem: 'decoder outputs'; count: number }
  | { problem: 'generator latents'; latents: string[] }
  | { problem: 'generator images'; images: string[] }
  | { problem: 'generator outputs'; count: number };
const contract = (a: RoleContract): string => {
  switch (a.problem) {
    case 'encoder outputs':
      return `an encoder returns the posterior's mean and log-variance, ([B, L], [B, L]); this one returns ${a.count} value(s)`;
    case 'encoder shapes':
      return `the mean and log-variance must both be [B, L], got ${dims(a.mean)} and ${dims(a.logvar)}`;
    case 'decoder latents':
      return `a decoder takes one latent code [B, L] besides the model's inputs; this one takes ${a.latents.length ? a.latents.map((l) => `${l.name} ${dims(l.shape)}`).join(', ') : 'none'}`;
    case 'decoder outputs':
      return `a decoder returns one image, this one returns ${a.count} values`;
    case 'generator latents':
      return `a generator takes only the model's inputs (the conditions); ${a.latents.join(', ')} is not one`;
    case 'generator images':
      return `a generator takes only the conditions (reference and label inputs), not the image it generates; ${a.images.join(', ')} is the model's image input`;
    case 'generator outputs':
      return `a generator returns one image, this one returns ${a.count} values`;
  }
};

/** What a tool needs that the model does not declare (SC5001). */
export type Need =
  | { need: 'entry'; model: string; role: string; purpose: string }
  | { need: 'entries'; model: string; tool: string; lacking: 'an encode' | 'a decode' }
  | { need: 'training step'; model: string }
  | { need: 'entry name'; model: string; name: string; entries: string[] }
  | { need: 'evaluate'; model: string }
  | { need: 'scoring'; model: string }
  | { need: 'input'; model: string; tool: string; role: string; found: string[] }
  | { need: 'input role'; input: string }
  | { need: 'label input'; model: string }
  | { need: 'no conditions'; model: string; conditions: string[]; purpose: string }
  | { need: 'reference channels'; model: string; input: string; channels: string[]; tool: string; want: readonly string[] };
const need = (a: Need): string => {
  switch (a.need) {
    case 'entry':
      return `model ${a.model} has no ${a.role} entry, so it cannot ${a.purpose}`;
    case 'entries':
      return `${a.tool}, and model ${a.model} lacks ${a.lacking} entry`;
    case 'training step':
      return `model ${a.model} has no training step`;
    case 'entry name':
      return `model ${a.model} has no entry '${a.name}' (entries: ${a.entries.join(', ')})`;
    case 'evaluate':
      return `the training step of ${a.model} declares no \`evaluate\``;
    case 'scoring':
      return `model ${a.model} does not say how a cell is scored: its training step has no \`evaluate\``;
    case 'input':
      return `${a.tool} needs the model's ${a.role} input, and model ${a.model} has ${a.found.length ? `${a.found.length} (${a.found.join(', ')})` : 'none'}`;
    case 'input role':
      return `input ${a.input} has no role, so it cannot be fed from data`;
    case 'label input':
      return `model ${a.model} takes no label, so it cannot generate a structure per label`;
    case 'no conditions':
      return `model ${a.model} is conditioned on ${a.conditions.join(', ')}, so it cannot ${a.purpose}`;
    case 'reference channels':
      return `${a.tool} swaps the ${a.want.join(' and ')} channels of the model's reference input between cells, and input ${a.input} of model ${a.model} reads ${a.channels.join(', ')}`;
  }
};

/** How the data do not fit the model (SC5002). */
export type Misfit =
  | { misfit: 'channel'; input: string; channel: string; have: string[] }
  | { misfit: 'image size'; input: string; size: Shape; channel: string; values: number; want: number }
  | { misfit: 'labels'; input: string; takes: number; classes: readonly string[] }
  | { misfit: 'label'; label: string; classes: readonly string[] };
const misfit = (a: Misfit): string => {
  switch (a.misfit) {
    case 'channel':
      return `input ${a.input} takes the ${a.channel} channel, which the data do not have (they have ${a.have.join(', ')})`;
    case 'image size':
      return `input ${a.input} takes ${a.size.join('×')} images, the data's ${a.channel} channel has ${a.values} values, not ${a.want}`;
    case 'labels':
      return `input ${a.input} takes ${a.takes} labels but the data have ${a.classes.length} (${a.classes.slice(0, 6).join(', ')}${a.classes.length > 6 ? ', …' : ''})`;
    case 'label':
      return `unknown label '${a.label}'; the model was trained on: ${a.classes.join(', ')}`;
  }
};

/**
 * Every code the toolchain can emit: its default severity, a one-line title (its meaning) and
 * the template of its message. Sites report a code with the template's holes filled:
 * `report('SC2004', span, { owner: 'layer conv', name: 'kk' })` → "layer conv has no parameter 'kk'".
 */
export const CODES = {
  // ---- Syntax (lexer and parser, dsl/index.ts, dsl/build.ts) ----
  /** The parser's own words (dsl/parser.ts `messages`): what it expected, what it found. */
  SC1001: { severity: 'error', title: 'unexpected token', message: ({ detail }: { detail: string }) => detail },
  SC1002: { severity: 'error', title: 'unexpected end of file', message: ({ detail }: { detail: string }) => detail },
  SC1003: { severity: 'error', title: 'invalid character', message: ({ char }: { char: string }) => `invalid character ${describeChar(char)}` },
  SC1004: { severity: 'error', title: 'unterminated string', message: (_: NoArgs) => 'string is not closed before the end of the line' },
  SC1005: {
    severity: 'error',
    title: 'chained comparison',
    message: ({ first, second }: { first: string; second: string }) => `comparisons do not chain: '${first}' is followed by '${second}'`,
  },
  SC1006: {
    severity: 'error',
    title: 'nesting too deep',
    message: ({ limit, operators }: { limit: number; operators?: boolean }) =>
      operators ? `an expression chains more operators than the compiler allows (limit: ${limit.toLocaleString('en-US')} in one expression)` : `expressions nest deeper than the compiler allows (limit: ${limit} levels)`,
  },
  // ---- Structure, checked while building the AST (dsl/build.ts, dsl/check.ts) and by the compiler ----
  SC1101: {
    severity: 'error',
    title: 'statement not allowed here',
    message: ({ keyword, place, home }: { keyword: string; place?: string; home?: string }) =>
      `'${keyword}' is not allowed ${place ? `in ${place}` : 'here'}${home ? `: it belongs in ${home}` : ''}`,
  },
  SC1102: { severity: 'error', title: 'duplicate declaration', message: (a: { what: 'declaration' | 'entry point'; name: string; line: number; col: number }) => duplicate(a) },
  SC1103: {
    severity: 'error',
    title: 'duplicate parameter, input or override',
    message: (a: { what: 'parameter or input' | 'parameter' | 'model input' | 'entry parameter' | 'override'; name: string; line: number; col: number }) => duplicate(a),
  },
  SC1104: {
    severity: 'error',
    title: 'block or entry point without return',
    message: ({ what, name }: { what: 'block' | 'entry point'; name: string }) =>
      what === 'block' ? `block '${name}' never returns its output` : `entry point '${name}' never returns a value`,
  },
  SC1105: {
    severity: 'error',
    title: 'instance name on something that is not a layer call',
    message: ({ name }: { name?: string }) =>
      name !== undefined ? `instance name '${name}' must be followed by a layer or block, like ${name}: conv(32, k = 3)` : 'an instance name goes before a layer or block call',
  },
  SC1106: {
    severity: 'error',
    title: 'missing type',
    message: ({ what, name }: { what: 'parameter' | 'block input'; name: string }) => `${what} '${name}' needs a ${what === 'parameter' ? 'type' : 'shape'}`,
  },
  SC1107: {
    severity: 'error',
    title: 'invalid type',
    message: (a: { problem: 'name as shape'; name: string } | { problem: 'partly named tuple' } | { problem: 'list element' } | { problem: 'not a shape' }) =>
      a.problem === 'name as shape' ? `'${a.name}' is not a shape: tensor inputs and outputs have shapes like [B, C, ...S]`
      : a.problem === 'partly named tuple' ? 'name every output of a tuple or none: (mu: [B, L], logvar: [B, L])'
      : a.problem === 'list element' ? 'a list type names one element type, like [int]'
      : 'expected a shape',
  },
  SC1108: {
    severity: 'error',
    title: 'model override must be named',
    message: ({ model, template }: { model: string; template: string }) => `model '${model}': overrides of '${template}' must be named`,
  },
  SC1110: {
    severity: 'error',
    title: 'required parameter after a parameter with a default',
    message: ({ name, after }: { name: string; after: string }) => `parameter '${name}' has no default but comes after '${after}', which has one`,
  },
  SC1111: { severity: 'error', title: 'default value on a tensor input', message: ({ name }: { name: string }) => `tensor input '${name}' cannot have a default value` },
  SC1112: { severity: 'error', title: 'duplicate output name', message: ({ entry, name }: { entry: string; name: string }) => `entry ${entry} names two outputs '${name}'` },
  SC1113: {
    severity: 'error',
    title: 'training step without minimize',
    message: (a: { step: string } | { unreached: true }) => ('step' in a ? `training step '${a.step}' has no objective` : 'the training step never reaches `minimize`'),
  },
  SC1114: {
    severity: 'error',
    title: 'optional compile-time parameter',
    message: ({ name }: { name: string }) => `parameter '${name}' cannot be optional: only tensor inputs take '?'`,
  },
  // ---- Names, imports and roles (the compiler; imports: dsl/load.ts) ----
  SC2001: { severity: 'error', title: 'unknown name', message: ({ name }: { name: string }) => `unknown name '${name}'` },
  SC2002: { severity: 'error', title: 'not callable', message: ({ what, here }: { what: string; here?: boolean }) => `${what} cannot be called${here ? ' here' : ''}` },
  SC2003: {
    severity: 'error',
    title: 'import not found',
    message: ({ path, target }: { path: string; target: string }) => `cannot find imported file '${path}' (looked for ${target})`,
  },
  SC2004: {
    severity: 'error',
    title: 'unknown parameter or input',
    message: ({ owner, name, input }: { owner: string; name: string; input?: boolean }) => `${owner} has no ${input ? 'input' : 'parameter'} '${name}'`,
  },
  SC2005: {
    severity: 'error',
    title: 'missing argument',
    message: (a: { owner: string; name: string; kind?: 'parameter' | 'input' } | { modelParameter: string }) =>
      'modelParameter' in a ? `model parameter '${a.modelParameter}' has no default and was not given` : `${a.owner} needs ${a.kind ? `${a.kind} ` : ''}'${a.name}'`,
  },
  SC2006: { severity: 'error', title: 'duplicate instance name', message: ({ name, block }: { name: string; block: string }) => `two instances named '${name}' in ${block}` },
  SC2007: { severity: 'error', title: 'import cycle', message: ({ cycle }: { cycle: string[] }) => `import cycle: ${cycle.join(' → ')}` },
  SC2008: {
    severity: 'error',
    title: 'layer or block without an instance name',
    message: ({ what, name, holds }: { what: 'layer' | 'block'; name: string; holds?: string }) =>
      `${what} ${name} needs an instance name (\`name: ${name}(…)\`): ${holds ? `the weights of its ${holds} are` : 'its weights are'} named after it`,
  },
  SC2009: { severity: 'error', title: 'unknown role', message: ({ role, of }: { role: string; of: 'input' | 'entry' }) => `'${role}' is not an ${of} role` },
  SC2010: {
    severity: 'error',
    title: 'two entries with one role',
    message: ({ first, second, role }: { first: string; second: string; role: string }) => `entries ${first} and ${second} both have the role ${role}`,
  },
  SC2011: { severity: 'error', title: 'argument given twice', message: ({ owner, name }: { owner: string; name: string }) => `${owner}: parameter '${name}' given twice` },
  SC2012: {
    severity: 'error',
    title: 'unknown model',
    message: ({ name, models }: { name: string; models?: string[] }) => (models ? `no model named '${name}' (models: ${models.join(', ')})` : `unknown model '${name}'`),
  },
  SC2013: { severity: 'error', title: 'file without a model', message: ({ file }: { file: string }) => `${file} declares no model` },
  SC2014: { severity: 'error', title: 'not an input of the model', message: ({ name, model }: { name: string; model: string }) => `'${name}' is not an input of model ${model}` },
  SC2015: {
    severity: 'error',
    title: 'defaults for something that is not a layer',
    message: ({ name, layers }: { name: string; layers: string[] }) => `'${name}' is not a layer (layers: ${layers.join(', ')})`,
  },
  SC2016: {
    severity: 'error',
    title: 'wrong number of arguments',
    message: ({ owner, takes, argument }: { owner: string; takes: string; argument?: number }) => `${owner} takes ${takes}${argument !== undefined ? `, this is argument ${argument}` : ''}`,
  },
  // ---- Shapes (the compiler) ----
  SC3001: {
    severity: 'error',
    title: 'shape mismatch at a block boundary',
    message: ({ what, shape, declared, axes, got, size }: { what: string; shape: Shape; declared: string; axes: string; got: string; size: string }) =>
      `${what} has shape ${dims(shape)}, the declaration says ${declared}: ${axes} ${got} where it declares ${size}`,
  },
  SC3002: {
    severity: 'error',
    title: 'rank mismatch',
    message: (a: { what: string; shape: Shape; declared: string; wants: string } | { layer: string; takes: string; shape: Shape }) =>
      'layer' in a ? `${a.layer} takes ${a.takes}, got ${dims(a.shape)}` : `${a.what} has rank ${a.shape.length} (${dims(a.shape)}), the declaration ${a.declared} wants ${a.wants}`,
  },
  /** The elementwise op's shape rule's words (kernels: `add: cannot broadcast …`). */
  SC3003: { severity: 'error', title: 'shapes do not broadcast', message: ({ reason }: { reason: string }) => reason },
  SC3004: {
    severity: 'error',
    title: 'size is not divisible',
    message: ({ dividend, divisor, what, size }: { dividend: number; divisor: number; what?: string; size?: string }) =>
      what ? `${what}: ${size} is not a whole size (${dividend} is not divisible by ${divisor})` : `${dividend} is not divisible by ${divisor}`,
  },
  SC3005: { severity: 'error', title: 'not a size', message: ({ size, got }: { size: string; got: string }) => `size '${size}' is ${got} here, not a size (a whole number ≥ 0)` },
  SC3006: {
    severity: 'error',
    title: 'wrong number of values returned',
    message: ({ what, returned, declared }: { what: string; returned: number; declared: number }) => `${what}: ${returned} value(s) returned, ${declared} declared`,
  },
  SC3007: {
    severity: 'error',
    title: "input shape does not fit its role",
    message: (a: { label: string } | { input: string; declared: string; shape: Shape; role: string; channels: string[] }) =>
      'label' in a
        ? `a label input is [B, classes] (a one-hot row per cell), this one is ${a.label}`
        : `input ${a.input} is ${a.declared} = ${dims(a.shape)} but its ${a.role} role names ${a.channels.length} channel(s) (${a.channels.join(', ')})`,
  },
  SC3008: {
    severity: 'error',
    title: 'loss or reported value is not one number',
    message: ({ shape, reported }: { shape: Shape; reported?: string }) => `${reported ? `a reported value (${reported})` : 'the loss'} must be one number, got shape ${dims(shape)}`,
  },
  SC3009: {
    severity: 'error',
    title: 'evaluated value is not one per cell',
    message: ({ batch, name, shape }: { batch: number; name: string; shape: Shape }) => `evaluate takes one value per cell ([B] = [${batch}]); ${name} is ${dims(shape)}`,
  },
  /** The layer's kernel's shape rule's words (kernels: `conv: the output would be empty …`). */
  SC3010: { severity: 'error', title: 'a layer does not accept its input', message: ({ reason }: { reason: string }) => reason },
  /** The function's kernel's shape rule's words (kernels: `avgpool: expects an image …`). */
  SC3011: { severity: 'error', title: 'a function does not accept its arguments', message: ({ reason }: { reason: string }) => reason },
  SC3012: {
    severity: 'error',
    title: 'parameter used with two shapes',
    message: ({ name, first, second }: { name: string; first: Shape; second: Shape }) => `${name}: used with shapes ${dims(first)} and ${dims(second)}`,
  },
  // ---- Values and parameters (the compiler) ----
  SC4001: {
    severity: 'error',
    title: 'type mismatch',
    message: (a: { name: string; value: string; type: string } & ({ declared: string } | { words: string; fix?: string })) =>
      `parameter '${a.name}' got ${a.value} (${a.type}), ${'declared' in a ? `which is not of type ${a.declared}` : `but ${a.name} is ${a.words}${a.fix ? `; write ${a.fix}` : ''}`}`,
  },
  SC4002: { severity: 'error', title: 'assertion failed', message: ({ message }: { message?: string }) => message ?? 'assertion failed' },
  SC4003: {
    severity: 'error',
    title: 'value must be known at compile time',
    message: ({ what, wants, got }: { what: string; wants: string; got?: string }) => `${what} ${wants}${got !== undefined ? `, got ${got}` : ''}`,
  },
  SC4004: {
    severity: 'error',
    title: 'invalid attribute value',
    message: (a: { layer: string; attribute: string; min: number; got: string } | { layer: string; numbers: string }) =>
      'numbers' in a ? `${a.layer}: ${a.numbers} must be numbers` : `layer ${a.layer}: ${a.attribute} must be an integer ≥ ${a.min}, got ${a.got}`,
  },
  SC4005: {
    severity: 'error',
    title: "entry does not keep its role's contract",
    message: (a: { entry: string; role: string } & RoleContract) => `entry ${a.entry} (role ${a.role}): ${contract(a)}`,
  },
  SC4006: {
    severity: 'error',
    title: 'wrong number of values bound',
    message: ({ names, values }: { names: number; values: number }) => `${names} names but the value gives ${values}`,
  },
  SC4007: { severity: 'error', title: 'spread of something that is not a list', message: ({ got }: { got: string }) => `only a list can be spread, got ${got}` },
  SC4008: { severity: 'error', title: 'cannot index', message: ({ object, index }: { object: string; index: string }) => `cannot index ${object} with ${index}` },
  SC4009: { severity: 'error', title: 'index out of range', message: ({ index, length }: { index: number; length: number }) => `index ${index} is outside a list of ${length}` },
  SC4010: {
    severity: 'error',
    title: 'invalid argument of a function',
    message: (a: { fn: string; takes: string; got?: string } | { fn: string; option: string; is: string }) =>
      'option' in a ? `${a.fn}: ${a.option} is ${a.is}` : `${a.fn} takes ${a.takes}${a.got !== undefined ? `, got ${a.got}` : ''}`,
  },
  SC4011: { severity: 'error', title: 'lists of different lengths', message: ({ left, right }: { left: number; right: number }) => `lists of lengths ${left} and ${right}` },
  SC4012: {
    severity: 'error',
    title: 'operator does not apply',
    message: ({ op, left, right }: { op: string; left: string; right: string }) => `'${op}' does not apply to ${left} and ${right}`,
  },
  SC4013: { severity: 'error', title: 'not a tensor', message: ({ what, got }: { what: string; got: string }) => `${what} must be a tensor, got ${got}` },
  SC4014: {
    severity: 'error',
    title: 'invalid optimiser',
    message: (a: { problem: 'not adam' } | { problem: 'arguments' } | { problem: 'not a number'; argument: string } | { problem: 'range'; argument: string; range: string; got: number }) =>
      a.problem === 'not adam' ? 'the optimiser must be adam(...)'
      : a.problem === 'arguments' ? 'adam takes named arguments lr, beta1, beta2, eps'
      : a.problem === 'range' ? `adam's ${a.argument} must lie in ${a.range}, got ${a.got}`
      : `adam's ${a.argument} must be a number`,
  },
  SC4015: {
    severity: 'error',
    title: 'invalid role arguments',
    message: (a: { label: true } | { role: string; notAChannel?: string }) =>
      'label' in a
        ? 'the label role takes no arguments: its classes are the width of the input'
        : `the ${a.role} role names its channels, in order${a.notAChannel !== undefined ? `; ${a.notAChannel} is not a data channel` : ''}`,
  },
  SC4016: {
    severity: 'error',
    title: 'report or evaluate of something that is not a variable',
    message: ({ statement }: { statement: 'report' | 'evaluate' }) => `${statement} names variables: \`${statement} ${statement === 'report' ? 'recon, kl, loss' : 'elbo, recon, kl'}\``,
  },
  SC4017: {
    severity: 'error',
    title: 'random draw outside an entry or training step',
    message: ({ fn }: { fn: string }) => `${fn} draws anew at every run: call it in an entry or the training step, not in a const or the model body`,
  },
  // ---- What the tools need of a model and its data (trainer, eval, embed, generate, report) ----
  SC4018: {
    severity: 'error',
    title: 'compile-time budget exceeded',
    message: ({ what, limit }: { what: string; limit: string }) => `${what} exceeds the compiler's limit of ${limit}`,
  },
  SC4019: {
    severity: 'error',
    title: 'recursive model instance or block',
    message: ({ cycle }: { cycle: string[] }) => `${cycle[0]} is defined through itself: ${cycle.join(' → ')}`,
  },
  SC4020: {
    severity: 'error',
    title: 'number not finite',
    message: (a: { what: string; value: number } | { what: string; byZero: true }) =>
      'byZero' in a ? `${a.what} divides by zero`
      : Number.isNaN(a.value) ? `${a.what} is not a number (NaN)`
      : `${a.what} overflows: it is ${a.value}, beyond ±1.8e308, the largest a 64-bit float holds`,
  },
  SC2017: {
    severity: 'error',
    title: 'not a model file',
    message: ({ path, why }: { path: string; why: string }) => `cannot read '${path}' as a model file: ${why}`,
  },
  SC2018: {
    severity: 'error',
    title: 'import outside the model tree',
    message: ({ path, why }: { path: string; why: string }) => `import '${path}' lies outside the model's folder tree: ${why}`,
  },
  SC5001: { severity: 'error', title: 'the model does not declare what this tool needs', message: need },
  SC5002: { severity: 'error', title: 'the data do not fit the model', message: misfit },
} as const satisfies Record<string, { severity: Severity; title: string; message: (args: never) => string }>;

export type DiagnosticCode = keyof typeof CODES;

/** The holes of a code's message template. */
export type MessageArgs<C extends DiagnosticCode> = Parameters<(typeof CODES)[C]['message']>[0];

/** A code's message with its template's holes filled. */
export function formatMessage<C extends DiagnosticCode>(code: C, args: MessageArgs<C>): string {
  return (CODES[code].message as (a: MessageArgs<C>) => string)(args);
}

/** One step of the chain of block call sites that led to a diagnostic (innermost first). */
export interface CallSite {
  block: string;
  span: Span;
}

export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  message: string;
  span: Span;
  /** Block call sites, innermost first: "in block Down called at file:line:col". */
  callStack: CallSite[];
  /** Extra lines printed after the chain (hints: what to do). */
  notes: string[];
}

/** A diagnostic whose message is given as text (the renderer's input); sites use `report`. */
export function diagnostic(code: DiagnosticCode, span: Span, message: string, opts: { callStack?: CallSite[]; notes?: string[]; severity?: Severity } = {}): Diagnostic {
  return { code, severity: opts.severity ?? CODES[code].severity, message, span, callStack: opts.callStack ?? [], notes: opts.notes ?? [] };
}

/** A diagnostic of `code` with its message template filled from `args`. */
export function report<C extends DiagnosticCode>(code: C, span: Span, args: MessageArgs<C>, opts: { callStack?: CallSite[]; notes?: string[]; severity?: Severity } = {}): Diagnostic {
  return diagnostic(code, span, formatMessage(code, args), opts);
}

/** Collects diagnostics in order; `errors` tells whether compilation may go on. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  add(d: Diagnostic): void { this.items.push(d); }
  report<C extends DiagnosticCode>(code: C, span: Span, args: MessageArgs<C>, opts?: { callStack?: CallSite[]; notes?: string[] }): void {
    this.add(report(code, span, args, opts));
  }
  get hasErrors(): boolean { return this.items.some((d) => d.severity === 'error'); }
  /** Sorted by file, then position (a parser may find errors out of order after recovery). */
  sorted(): Diagnostic[] {
    return [...this.items].sort((a, b) => bySource(a.span, b.span));
  }
}

/** The order diagnostics are shown in: by file, then position. */
export const bySource = (a: Span, b: Span): number => a.file.localeCompare(b.file) || a.offset - b.offset;

/** Thrown by APIs that cannot return partial results; carries every diagnostic. */
export class DiagnosticError extends Error {
  constructor(readonly diagnostics: Diagnostic[], readonly sources?: SourceLookup) {
    super(sources ? renderDiagnostics(diagnostics, sources) : renderDiagnostics(diagnostics, {}).replace(/\n\n/g, '\n'));
    this.name = 'DiagnosticError';
  }
}

/** Gives the text of a file by name (for the source line under a message); undefined if unknown. */
export type SourceLookup = ((file: string) => string | undefined) | Map<string, string> | Record<string, string>;

function lookup(sources: SourceLookup, file: string): string | undefined {
  if (typeof sources === 'function') return sources(file);
  if (sources instanceof Map) return sources.get(file);
  return Object.hasOwn(sources, file) ? sources[file] : undefined;
}

export function formatLocation(span: Span): string {
  return span.line ? `${span.file}:${span.line}:${span.col}` : span.file;
}

/** A span for what the command line said rather than a file (line 0): `--set size=64,40: error[SC4001]: …`. */
export function commandLineSpan(text: string): Span {
  return { file: text, line: 0, col: 0, endLine: 0, endCol: 0, offset: 0, endOffset: 0 };
}

/** The first line of a rendered diagnostic: `file:line:col: error[SC1001]: message`. */
export function formatHeadline(d: Diagnostic): string {
  return `${formatLocation(d.span)}: ${d.severity}[${d.code}]: ${d.message}`;
}

/** Characters that look like nothing or like a plain space, named so that the message says what to delete. */
const INVISIBLE: Record<number, string> = { 0xa0: 'a no-break space', 0xfeff: 'a zero-width no-break space (byte-order mark)', 0x200b: 'a zero-width space', 0x3000: 'an ideographic space' };

/**
 * The first character of `text` for SC1003: quoted with its code point when it shows, by code
 * point and kind when it does not (a no-break space pasted from a web page reads as ' ').
 */
function describeChar(text: string): string {
  const ch = String.fromCodePoint(text.codePointAt(0) ?? 0xfffd);
  const cp = ch.codePointAt(0)!;
  const code = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  if (INVISIBLE[cp]) return `${code} (${INVISIBLE[cp]})`;
  if (/\p{Cc}/u.test(ch)) return `${code} (a control character)`;
  if (/[\p{Zs}\p{Zl}\p{Zp}\p{Cf}]/u.test(ch)) return `${code} (an invisible or space character)`;
  return `'${ch}' (${code})`;
}

// ---- Bounds on what is printed: a file of random bytes, or one line of 100,000 brackets, must
// not print megabytes. One place for the numbers. ----
/** Diagnostics rendered in full; past them one line says how many more there are. */
export const MAX_RENDERED_DIAGNOSTICS = 20;
/** Columns of a quoted source line shown around the caret; a longer line is clipped, with … marks. */
export const MAX_QUOTED_COLUMNS = 120;
/** Characters of a message shown (a message quoting a huge token); the rest is cut, with a … mark. */
export const MAX_MESSAGE_CHARS = 400;

/**
 * Text as shown on a terminal: C0 control characters as their Control Pictures, and C1 controls,
 * format characters (bidirectional overrides, zero-width characters), lone surrogates and
 * private-use or unassigned code points as U+FFFD, each one column, so that nothing reaches the
 * terminal raw and the caret still lines up.
 */
export const visibleText = (text: string): string =>
  text
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => String.fromCharCode(c === '\x7f' ? 0x2421 : 0x2400 + c.charCodeAt(0)))
    .replace(/[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\u2028\u2029]/gu, (c) => (c === '\t' || c === '\n' ? c : '\uFFFD'));

/** `text` cut to `max` characters (whole code points) with a … mark when longer. */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  if (/[\uD800-\uDBFF]/.test(text[end - 1] ?? '')) end--;
  return `${text.slice(0, end)}…`;
}

/**
 * The part of `line` shown under a diagnostic: at most MAX_QUOTED_COLUMNS characters around
 * [start, end) (0-based), with … where it is cut; `caret` is where the span starts in the text
 * shown and `carets` how many of its characters the shown part holds (at least 1).
 */
export function quoteWindow(line: string, start: number, end: number): { text: string; caret: string; carets: number } {
  let from = 0;
  let to = line.length;
  if (line.length > MAX_QUOTED_COLUMNS) {
    // A third of the window before the caret: the reader sees what leads up to the error.
    from = Math.max(0, Math.min(start - Math.floor(MAX_QUOTED_COLUMNS / 3), line.length - MAX_QUOTED_COLUMNS));
    to = Math.min(line.length, from + MAX_QUOTED_COLUMNS);
    // Never cut a surrogate pair in two.
    if (from > 0 && /[\uDC00-\uDFFF]/.test(line[from])) from++;
    if (to < line.length && /[\uDC00-\uDFFF]/.test(line[to])) to--;
  }
  const head = from > 0 ? '…' : '';
  const tail = to < line.length ? '…' : '';
  const before = visibleText(line.slice(from, Math.max(from, Math.min(start, to))));
  // One column per code point; tabs kept so the caret lines up under tab-indented code.
  const caret = (head + before).replace(/[^\t]/gu, ' ');
  const shownEnd = Math.min(end, to);
  const carets = Math.max(1, [...line.slice(Math.max(start, from), Math.max(shownEnd, from))].length);
  return { text: head + visibleText(line.slice(from, to)) + tail, caret, carets };
}

/** Line `n` (1-based) of `text`, found without splitting the whole file; undefined past its end. */
function lineOf(text: string, n: number): string | undefined {
  let at = 0;
  for (let i = 1; i < n; i++) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) return undefined;
    at = nl + 1;
  }
  const nl = text.indexOf('\n', at);
  const line = nl < 0 ? text.slice(at) : text.slice(at, nl);
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** The full text: headline, the source line with a caret under the span, the call chain, notes. */
export function renderDiagnostic(d: Diagnostic, sources: SourceLookup): string {
  const out = [visibleText(clipText(formatHeadline(d), MAX_MESSAGE_CHARS))];
  const text = lookup(sources, d.span.file);
  const lineText = text !== undefined && d.span.line > 0 ? lineOf(text, d.span.line) : undefined;
  if (lineText !== undefined) {
    const num = String(d.span.line);
    const gutter = ' '.repeat(num.length);
    // Underline to the end of the span on its first line (at least one caret).
    const start = d.span.col - 1;
    const end = d.span.endLine === d.span.line ? Math.max(d.span.endCol - 1, start + 1) : Math.max(lineText.length, start + 1);
    const q = quoteWindow(lineText, start, end);
    out.push(`${gutter} |`, `${num} | ${q.text}`, `${gutter} | ${q.caret}${'^'.repeat(q.carets)}`);
  }
  for (const site of d.callStack) out.push(`  in block ${site.block} called at ${formatLocation(site.span)}`);
  for (const note of d.notes) out.push(`  = note: ${visibleText(clipText(note, MAX_MESSAGE_CHARS))}`);
  return out.join('\n');
}

/** The first MAX_RENDERED_DIAGNOSTICS diagnostics in full, then one line for the rest. */
export function renderDiagnostics(ds: readonly Diagnostic[], sources: SourceLookup): string {
  const shown = ds.slice(0, MAX_RENDERED_DIAGNOSTICS).map((d) => renderDiagnostic(d, sources));
  const rest = ds.slice(MAX_RENDERED_DIAGNOSTICS);
  if (rest.length) {
    const what = rest.every((d) => d.severity === 'error') ? (rest.length === 1 ? 'error' : 'errors') : rest.length === 1 ? 'diagnostic' : 'diagnostics';
    shown.push(`… and ${rest.length} more ${what}`);
  }
  return shown.join('\n\n');
}

/** A span covering `a` through `b` (same file). */
export function joinSpans(a: Span, b: Span): Span {
  return { file: a.file, line: a.line, col: a.col, endLine: b.endLine, endCol: b.endCol, offset: a.offset, endOffset: b.endOffset };
}
