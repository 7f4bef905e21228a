// Tokens of the statcell model language. Newlines are plain whitespace: every statement starts
// with a keyword or a name followed by `=`/`,`, so no separators are needed (`;` is allowed).
// Each token has a `label` (how it is written) so parse errors read "expected ')'", not "RParen".

import { createToken, Lexer, type TokenType } from 'chevrotain';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: Lexer.SKIPPED });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });

function keyword(word: string): TokenType {
  return createToken({ name: word[0].toUpperCase() + word.slice(1), pattern: new RegExp(word), longer_alt: Identifier, label: `'${word}'` });
}

export const Import = keyword('import');
export const Const = keyword('const');
export const Defaults = keyword('defaults');
export const Block = keyword('block');
export const Model = keyword('model');
export const Input = keyword('input');
export const Entry = keyword('entry');
export const Train = keyword('train');
export const Return = keyword('return');
export const For = keyword('for');
export const In = keyword('in');
export const If = keyword('if');
export const Then = keyword('then');
export const Else = keyword('else');
export const Assert = keyword('assert');
export const Minimize = keyword('minimize');
export const Using = keyword('using');
export const Report = keyword('report');
export const Evaluate = keyword('evaluate');
/** `as` must come after `assert` in the token list: the lexer takes the first token that matches. */
export const As = keyword('as');
export const True = keyword('true');
export const False = keyword('false');
export const None = keyword('none');
export const And = keyword('and');
export const Or = keyword('or');
export const Not = keyword('not');

export const NumberLit = createToken({ name: 'NumberLit', pattern: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/, label: 'a number' });
export const StringLit = createToken({ name: 'StringLit', pattern: /"(?:[^"\\\n]|\\.)*"/, label: 'a string' });
// An unclosed string runs to the end of the line. It is still a string for the parser (so one
// missing quote gives one error, SC1004, reported by the lexer pass) rather than a cascade.
export const UnterminatedString = createToken({ name: 'UnterminatedString', pattern: /"(?:[^"\\\n]|\\.)*/, categories: [StringLit], label: 'a string' });

function punct(name: string, text: string): TokenType {
  return createToken({ name, pattern: new RegExp(text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), label: `'${text}'` });
}

// Longer spellings first: `...` before `..`, `**` before `*`, `|>` before `|`, `->` before `-`.
export const Ellipsis = punct('Ellipsis', '...');
export const DotDot = punct('DotDot', '..');
export const Pipe = punct('Pipe', '|>');
export const Arrow = punct('Arrow', '->');
export const Power = punct('Power', '**');
export const EqEq = punct('EqEq', '==');
export const NotEq = punct('NotEq', '!=');
export const LessEq = punct('LessEq', '<=');
export const GreaterEq = punct('GreaterEq', '>=');
export const Less = punct('Less', '<');
export const Greater = punct('Greater', '>');
export const Plus = punct('Plus', '+');
export const Minus = punct('Minus', '-');
export const Star = punct('Star', '*');
export const Slash = punct('Slash', '/');
export const Percent = punct('Percent', '%');
export const Bar = punct('Bar', '|');
export const Equals = punct('Equals', '=');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');
export const Semicolon = punct('Semicolon', ';');
export const Question = punct('Question', '?');

export const keywords = [
  Import, Const, Defaults, Block, Model, Input, Entry, Train, Return, For, In, If, Then, Else,
  Assert, As, Minimize, Using, Report, Evaluate, True, False, None, And, Or, Not,
];

export const allTokens: TokenType[] = [
  WhiteSpace, Comment,
  ...keywords,
  Identifier, NumberLit, StringLit, UnterminatedString,
  Ellipsis, DotDot, Pipe, Arrow, Power, EqEq, NotEq, LessEq, GreaterEq, Less, Greater,
  Plus, Minus, Star, Slash, Percent, Bar, Equals, LParen, RParen, LBracket, RBracket,
  LBrace, RBrace, Comma, Colon, Semicolon, Question,
];

export const lexer = new Lexer(allTokens, { ensureOptimizations: false, positionTracking: 'full' });
