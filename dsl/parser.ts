// The Chevrotain CST parser of the model language. Error recovery is on, so one run reports
// every syntax error; messages come from `messages` below ("expected ')' but found '='").
// The grammar, in brief (docs/language.md has the full reference):
//
//   program   := (import | const | defaults | block | model)*
//   block     := 'block' Name params [inputs] '->' type body     -- one list: inputs only
//   model     := 'model' Name [params] body | 'model' Name '=' Name '(' args ')'
//   statement := input | entry | train | return | for | if | assert | minimize | report | evaluate
//              | const | defaults | names '=' expr
//   input     := 'input' Name ':' shape ['as' Name ['(' args ')']] ['if' expr]
//   entry     := 'entry' Name params ['->' output] ['as' Name] body
//   output    := [Name ':'] type | '(' [Name ':'] type (',' [Name ':'] type)* ')'
//   expr      := range ('|>' postfix)*        -- pipes bind loosest
//   atom      := label ':' postfix | literal | name | '(' expr ')' | '[' elements ']'
//              | 'if' expr 'then' expr 'else' expr

import { CstParser, EOF, type CstNode, type IParserErrorMessageProvider, type IToken, type TokenType } from 'chevrotain';
import * as T from './tokens.ts';

/** Characters of a token quoted in a message ("but found '…'"): a 100 kB string literal is cut. */
const MAX_QUOTED_TOKEN = 40;

function describe(tok: IToken): string {
  if (tok.tokenType === EOF) return 'end of file';
  const image = tok.image.length > MAX_QUOTED_TOKEN ? `${tok.image.slice(0, MAX_QUOTED_TOKEN - 1)}…` : tok.image;
  return `'${image}'`;
}

function tokenLabel(t: TokenType): string {
  return t.LABEL ?? t.name;
}

// What NoViableAlt / EarlyExit errors inside these rules were looking for, in words.
const ruleWords: Record<string, string> = {
  topDecl: "a declaration ('import', 'const', 'defaults', 'block' or 'model')",
  statement: 'a statement',
  atom: 'an expression',
  notExpr: 'an expression',
  unary: 'an expression',
  typeAtom: 'a type',
  modelDecl: "'=' or a parameter list or '{'",
  ifStmt: "'if' or '{'",
};

export const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    // Expecting the end of the file means a top-level declaration did not start.
    if (expected === EOF) return `expected ${ruleWords.topDecl} but found ${describe(actual)}`;
    return `expected ${tokenLabel(expected)} but found ${describe(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `expected ${ruleWords.topDecl} but found ${describe(firstRedundant)}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const wanted = ruleWords[ruleName] ?? oneOf(expectedPathsPerAlt.flat());
    return `expected ${wanted} but found ${describe(actual[0])}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, ruleName }) {
    const wanted = ruleWords[ruleName] ?? oneOf(expectedIterationPaths);
    return `expected ${wanted} but found ${describe(actual[0])}`;
  },
};

function oneOf(paths: TokenType[][]): string {
  const firsts = [...new Set(paths.filter((p) => p.length > 0).map((p) => tokenLabel(p[0])))];
  return firsts.length === 1 ? firsts[0] : `one of ${firsts.join(', ')}`;
}

export class StatcellParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, nodeLocationTracking: 'full', maxLookahead: 3, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  /** `name:` or `name{i}:` ahead: an instance name (needs 5 tokens of lookahead, so by hand). */
  private labelAhead(): boolean {
    if (this.LA(1).tokenType !== T.Identifier) return false;
    const t2 = this.LA(2).tokenType;
    if (t2 === T.Colon) return true;
    return t2 === T.LBrace && this.LA(3).tokenType === T.Identifier && this.LA(4).tokenType === T.RBrace && this.LA(5).tokenType === T.Colon;
  }

  program = this.RULE('program', () => {
    this.MANY(() => this.SUBRULE(this.topDecl));
  });

  topDecl = this.RULE('topDecl', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.importDecl) },
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.defaultsDecl) },
      { ALT: () => this.SUBRULE(this.blockDecl) },
      { ALT: () => this.SUBRULE(this.modelDecl) },
    ]);
  });

  importDecl = this.RULE('importDecl', () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.StringLit, { LABEL: 'path' });
  });

  constDecl = this.RULE('constDecl', () => {
    this.CONSUME(T.Const);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr, { LABEL: 'type' });
    });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  defaultsDecl = this.RULE('defaultsDecl', () => {
    this.CONSUME(T.Defaults);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.layerDefault) });
  });

  layerDefault = this.RULE('layerDefault', () => {
    this.CONSUME(T.Identifier, { LABEL: 'layer' });
    this.SUBRULE(this.argList);
  });

  blockDecl = this.RULE('blockDecl', () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.SUBRULE(this.paramList, { LABEL: 'lists' });
    this.OPTION(() => this.SUBRULE2(this.paramList, { LABEL: 'lists' }));
    this.CONSUME(T.Arrow);
    this.SUBRULE(this.typeExpr, { LABEL: 'output' });
    this.SUBRULE(this.body);
  });

  modelDecl = this.RULE('modelDecl', () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Equals);
          this.CONSUME2(T.Identifier, { LABEL: 'template' });
          this.SUBRULE(this.argList);
        },
      },
      {
        ALT: () => {
          this.OPTION(() => this.SUBRULE(this.paramList));
          this.SUBRULE(this.body);
        },
      },
    ]);
  });

  /** `(a: T, b?: T = v, ...)`, trailing comma allowed. Used for parameters and tensor inputs. */
  paramList = this.RULE('paramList', () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.param);
      this.MANY({ GATE: () => this.LA(2).tokenType !== T.RParen, DEF: () => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.param);
      } });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RParen);
  });

  param = this.RULE('param', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.OPTION(() => this.CONSUME(T.Question));
    this.OPTION2(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr, { LABEL: 'type' });
    });
    this.OPTION3(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expression, { LABEL: 'default' });
    });
  });

  body = this.RULE('body', () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.statement));
    this.CONSUME(T.RBrace);
  });

  statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.assignStmt) },
      { ALT: () => this.SUBRULE(this.returnStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => this.SUBRULE(this.ifStmt) },
      { ALT: () => this.SUBRULE(this.assertStmt) },
      { ALT: () => this.SUBRULE(this.inputStmt) },
      { ALT: () => this.SUBRULE(this.entryStmt) },
      { ALT: () => this.SUBRULE(this.trainStmt) },
      { ALT: () => this.SUBRULE(this.minimizeStmt) },
      { ALT: () => this.SUBRULE(this.reportStmt) },
      { ALT: () => this.SUBRULE(this.evaluateStmt) },
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.defaultsDecl) },
      { ALT: () => this.CONSUME(T.Semicolon) },
    ]);
  });

  assignStmt = this.RULE('assignStmt', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier, { LABEL: 'targets' }) });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  returnStmt = this.RULE('returnStmt', () => {
    this.CONSUME(T.Return);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression, { LABEL: 'values' }) });
  });

  forStmt = this.RULE('forStmt', () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier, { LABEL: 'variable' });
    this.CONSUME(T.In);
    this.SUBRULE(this.expression, { LABEL: 'iterable' });
    this.SUBRULE(this.body);
  });

  ifStmt = this.RULE('ifStmt', () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expression, { LABEL: 'test' });
    this.SUBRULE(this.body, { LABEL: 'then' });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([
        { ALT: () => this.SUBRULE(this.ifStmt, { LABEL: 'elseIf' }) },
        { ALT: () => this.SUBRULE2(this.body, { LABEL: 'else' }) },
      ]);
    });
  });

  assertStmt = this.RULE('assertStmt', () => {
    this.CONSUME(T.Assert);
    this.SUBRULE(this.expression, { LABEL: 'test' });
    this.OPTION(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.expression, { LABEL: 'message' });
    });
  });

  inputStmt = this.RULE('inputStmt', () => {
    this.CONSUME(T.Input);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr, { LABEL: 'shape' });
    this.OPTION2(() => {
      this.CONSUME(T.As);
      this.CONSUME2(T.Identifier, { LABEL: 'role' });
      this.OPTION3(() => this.SUBRULE(this.argList, { LABEL: 'roleArgs' }));
    });
    this.OPTION(() => {
      this.CONSUME(T.If);
      this.SUBRULE(this.expression, { LABEL: 'guard' });
    });
  });

  entryStmt = this.RULE('entryStmt', () => {
    this.CONSUME(T.Entry);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.SUBRULE(this.paramList);
    this.OPTION(() => {
      this.CONSUME(T.Arrow);
      this.SUBRULE(this.outputType, { LABEL: 'output' });
    });
    this.OPTION2(() => {
      this.CONSUME(T.As);
      this.CONSUME2(T.Identifier, { LABEL: 'role' });
    });
    this.SUBRULE(this.body);
  });

  /** An output type, optionally named: `xhat: [B, 2, ...S]`, or a tuple `(mu: [B, L], logvar: [B, L])`. */
  outputType = this.RULE('outputType', () => {
    this.OPTION(() => {
      this.CONSUME(T.Identifier, { LABEL: 'name' });
      this.CONSUME(T.Colon);
    });
    this.SUBRULE(this.typeExpr, { LABEL: 'type' });
  });

  trainStmt = this.RULE('trainStmt', () => {
    this.CONSUME(T.Train);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.SUBRULE(this.paramList);
    this.SUBRULE(this.body);
  });

  minimizeStmt = this.RULE('minimizeStmt', () => {
    this.CONSUME(T.Minimize);
    this.SUBRULE(this.expression, { LABEL: 'loss' });
    this.OPTION(() => {
      this.CONSUME(T.Using);
      this.SUBRULE2(this.expression, { LABEL: 'optimizer' });
    });
  });

  reportStmt = this.RULE('reportStmt', () => {
    this.CONSUME(T.Report);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression, { LABEL: 'values' }) });
  });

  evaluateStmt = this.RULE('evaluateStmt', () => {
    this.CONSUME(T.Evaluate);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression, { LABEL: 'values' }) });
  });

  // ---- types ----
  typeExpr = this.RULE('typeExpr', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Bar, DEF: () => this.SUBRULE(this.typeAtom, { LABEL: 'options' }) });
  });

  typeAtom = this.RULE('typeAtom', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.StringLit, { LABEL: 'literal' }) },
      { ALT: () => this.CONSUME(T.Identifier, { LABEL: 'name' }) },
      { ALT: () => this.SUBRULE(this.listExpr, { LABEL: 'list' }) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.outputType, { LABEL: 'tuple' }) });
          this.CONSUME(T.RParen);
        },
      },
    ]);
  });

  // ---- expressions, loosest first ----
  expression = this.RULE('expression', () => {
    this.SUBRULE(this.rangeExpr, { LABEL: 'input' });
    this.MANY(() => {
      this.CONSUME(T.Pipe);
      this.SUBRULE(this.postfixExpr, { LABEL: 'stages' });
    });
  });

  rangeExpr = this.RULE('rangeExpr', () => {
    this.SUBRULE(this.orExpr, { LABEL: 'operands' });
    this.OPTION(() => {
      this.CONSUME(T.DotDot);
      this.SUBRULE2(this.orExpr, { LABEL: 'operands' });
    });
  });

  orExpr = this.RULE('orExpr', () => {
    this.SUBRULE(this.andExpr, { LABEL: 'operands' });
    this.MANY(() => {
      this.CONSUME(T.Or, { LABEL: 'ops' });
      this.SUBRULE2(this.andExpr, { LABEL: 'operands' });
    });
  });

  andExpr = this.RULE('andExpr', () => {
    this.SUBRULE(this.notExpr, { LABEL: 'operands' });
    this.MANY(() => {
      this.CONSUME(T.And, { LABEL: 'ops' });
      this.SUBRULE2(this.notExpr, { LABEL: 'operands' });
    });
  });

  notExpr = this.RULE('notExpr', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Not, { LABEL: 'op' });
          this.SUBRULE(this.notExpr, { LABEL: 'operand' });
        },
      },
      { ALT: () => this.SUBRULE(this.comparison, { LABEL: 'operand' }) },
    ]);
  });

  // Comparisons do not chain: `a < b < c` parses, and the AST builder reports it (SC1005)
  // with a clear message rather than a surprise.
  comparison = this.RULE('comparison', () => {
    this.SUBRULE(this.additive, { LABEL: 'operands' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.EqEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.NotEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.LessEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.GreaterEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Less, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Greater, { LABEL: 'ops' }) },
      ]);
      this.SUBRULE2(this.additive, { LABEL: 'operands' });
    });
  });

  additive = this.RULE('additive', () => {
    this.SUBRULE(this.multiplicative, { LABEL: 'operands' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Plus, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Minus, { LABEL: 'ops' }) },
      ]);
      this.SUBRULE2(this.multiplicative, { LABEL: 'operands' });
    });
  });

  multiplicative = this.RULE('multiplicative', () => {
    this.SUBRULE(this.unary, { LABEL: 'operands' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Star, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Slash, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Percent, { LABEL: 'ops' }) },
      ]);
      this.SUBRULE2(this.unary, { LABEL: 'operands' });
    });
  });

  unary = this.RULE('unary', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Minus, { LABEL: 'op' });
          this.SUBRULE(this.unary, { LABEL: 'operand' });
        },
      },
      { ALT: () => this.SUBRULE(this.power, { LABEL: 'operand' }) },
    ]);
  });

  // `**` is right-associative and binds tighter than unary minus on its left: -2**2 = -4.
  power = this.RULE('power', () => {
    this.SUBRULE(this.postfixExpr, { LABEL: 'base' });
    this.OPTION(() => {
      this.CONSUME(T.Power);
      this.SUBRULE(this.unary, { LABEL: 'exponent' });
    });
  });

  postfixExpr = this.RULE('postfixExpr', () => {
    this.SUBRULE(this.atom);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.argList, { LABEL: 'suffixes' }) },
        { ALT: () => this.SUBRULE(this.indexSuffix, { LABEL: 'suffixes' }) },
      ]);
    });
  });

  argList = this.RULE('argList', () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.argument, { LABEL: 'args' });
      this.MANY({ GATE: () => this.LA(2).tokenType !== T.RParen, DEF: () => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.argument, { LABEL: 'args' });
      } });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RParen);
  });

  argument = this.RULE('argument', () => {
    this.OPTION(() => {
      this.CONSUME(T.Identifier, { LABEL: 'name' });
      this.CONSUME(T.Equals);
    });
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  indexSuffix = this.RULE('indexSuffix', () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.expression, { LABEL: 'index' });
    this.CONSUME(T.RBracket);
  });

  atom = this.RULE('atom', () => {
    this.OR([
      { GATE: () => this.labelAhead(), ALT: () => this.SUBRULE(this.labeled) },
      { ALT: () => this.CONSUME(T.NumberLit) },
      { ALT: () => this.CONSUME(T.StringLit) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.None) },
      { ALT: () => this.CONSUME(T.Identifier) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expression, { LABEL: 'paren' });
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.SUBRULE(this.listExpr) },
      { ALT: () => this.SUBRULE(this.conditional) },
    ]);
  });

  labeled = this.RULE('labeled', () => {
    this.CONSUME(T.Identifier, { LABEL: 'base' });
    this.OPTION(() => {
      this.CONSUME(T.LBrace);
      this.CONSUME2(T.Identifier, { LABEL: 'index' });
      this.CONSUME(T.RBrace);
    });
    this.CONSUME(T.Colon);
    this.SUBRULE(this.postfixExpr, { LABEL: 'expr' });
  });

  listExpr = this.RULE('listExpr', () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.listElement, { LABEL: 'elements' });
      this.MANY({ GATE: () => this.LA(2).tokenType !== T.RBracket, DEF: () => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.listElement, { LABEL: 'elements' });
      } });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RBracket);
  });

  listElement = this.RULE('listElement', () => {
    this.OPTION(() => this.CONSUME(T.Ellipsis));
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  conditional = this.RULE('conditional', () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expression, { LABEL: 'test' });
    this.CONSUME(T.Then);
    this.SUBRULE2(this.expression, { LABEL: 'then' });
    this.CONSUME(T.Else);
    this.SUBRULE3(this.expression, { LABEL: 'else' });
  });
}

/** One shared instance: building a Chevrotain parser (self-analysis) is the slow part. */
let shared: StatcellParser | null = null;
export function getParser(): StatcellParser {
  return (shared ??= new StatcellParser());
}

export type { CstNode };
