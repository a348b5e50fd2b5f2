/**
 * Lexer and parser of the Go text/template subset (see template.ts for what the subset is): source text →
 * text and action nodes, every failure a `TemplateError` naming `name:line:col`.
 * @module
 */

// ---------- lexer ----------

type TokenKind = 'text' | 'open' | 'close' | 'field' | 'dot' | 'ident' | 'string' | 'number' | 'pipe' | 'lparen' | 'rparen' | 'space' | 'char' | 'eof';
interface Token {
  kind: TokenKind;
  value: string;
  pos: number;
}

/** A parse or execution failure; its message is the whole Go-shaped error line. */
export class TemplateError extends Error {}
/** Where a position is, as Go reports it: `name:line:col`. */
export function where(name: string, src: string, pos: number): string {
  const before = src.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - (before.lastIndexOf('\n') + 1) + 1;
  return `${name}:${line}:${col}`;
}

function lex(src: string, fail: (pos: number, msg: string) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    let open = src.indexOf('{{', i);
    if (open === -1) open = src.length;
    let text = src.slice(i, open);
    const trimLeft = /^\{\{-[ \t\r\n]/.test(src.slice(open, open + 4));
    if (trimLeft) text = text.replace(/\s+$/, '');
    if (text) tokens.push({ kind: 'text', value: text, pos: i });
    if (open === src.length) break;
    i = open + (trimLeft ? 3 : 2);
    // a comment fills the whole action and leaves no token
    const lead = trimLeft ? /^\s*/.exec(src.slice(i))![0].length : 0;
    if (src.startsWith('/*', i + lead)) {
      const end = src.indexOf('*/', i + lead + 2);
      if (end === -1) fail(i + lead, 'unclosed comment');
      i = end + 2;
      const gap = /^\s*/.exec(src.slice(i))![0].length;
      if (gap > 0 && src.startsWith('-}}', i + gap)) i += gap + 3 + /^\s*/.exec(src.slice(i + gap + 3))![0].length;
      else if (src.startsWith('}}', i)) i += 2;
      else fail(i, 'comment ends before closing delimiter');
      continue;
    }
    tokens.push({ kind: 'open', value: '{{', pos: open });
    for (;;) {
      if (i >= src.length) fail(open, 'unclosed action');
      const c = src[i]!;
      if (/\s/.test(c)) {
        const m = /^\s+/.exec(src.slice(i))![0];
        if (src.startsWith('-}}', i + m.length)) {
          tokens.push({ kind: 'close', value: '}}', pos: i + m.length });
          i += m.length + 3;
          i += /^\s*/.exec(src.slice(i))![0].length; // right trim
          break;
        }
        tokens.push({ kind: 'space', value: m, pos: i });
        i += m.length;
        continue;
      }
      if (src.startsWith('}}', i)) {
        tokens.push({ kind: 'close', value: '}}', pos: i });
        i += 2;
        break;
      }
      const rest = src.slice(i);
      const m =
        /^\.[A-Za-z_][A-Za-z0-9_]*/.exec(rest) ?? /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest) ?? /^-?[0-9]+/.exec(rest) ?? /^"(?:[^"\\\n]|\\.)*"/.exec(rest) ?? /^`[^`]*`/.exec(rest);
      const word = m?.[0] ?? c;
      if (!m && c === '"') fail(i, 'unterminated quoted string');
      if (!m && c === '`') fail(i, 'unterminated raw quoted string');
      if (c === '$') fail(i, 'variables are not supported');
      if (/^-?[0-9]+(\.[0-9]|[eExXoObB_])/.test(rest) || /^'/.test(rest)) fail(i, 'only decimal integer and string constants are supported');
      const kind: TokenKind =
        !m ? (c === '|' ? 'pipe' : c === '(' ? 'lparen' : c === ')' ? 'rparen' : c === '.' ? 'dot' : 'char')
        : c === '.' ? 'field'
        : c === '"' || c === '`' ? 'string'
        : /[0-9-]/.test(c) ? 'number'
        : 'ident';
      const value = kind === 'field' ? word.slice(1) : kind === 'string' ? (c === '"' ? unquote(word, i, fail) : word.slice(1, -1)) : word;
      tokens.push({ kind, value, pos: i });
      i += word.length;
    }
  }
  tokens.push({ kind: 'eof', value: '', pos: src.length });
  return tokens;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", a: '\x07', b: '\b', f: '\f', v: '\v' };

function unquote(quoted: string, pos: number, fail: (pos: number, msg: string) => never): string {
  return quoted.slice(1, -1).replace(/\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
    if (e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
    const out = ESCAPES[e];
    if (out === undefined) fail(pos, `invalid syntax in quoted string: unknown escape \\${e}`);
    return out;
  });
}

// ---------- parser ----------

export type Operand =
  | { kind: 'field'; path: string[]; pos: number } // path [] is the dot itself
  | { kind: 'string'; value: string; pos: number }
  | { kind: 'number'; value: number; pos: number }
  | { kind: 'bool'; value: boolean; pos: number }
  | { kind: 'func'; name: string; pos: number }
  | { kind: 'pipeline'; commands: Command[]; pos: number; fields: string[] };
export interface Command {
  args: Operand[];
  pos: number;
}
export type Node = { kind: 'text'; text: string } | { kind: 'action'; commands: Command[]; pos: number };

const FUNCTIONS = new Set(['index', 'len', 'print', 'printf']);
const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue', 'nil']);

function parse(tokens: Token[], fail: (pos: number, msg: string) => never): Node[] {
  let k = 0;
  const peek = () => tokens[k]!;
  const next = () => tokens[k++]!;
  const skipSpace = () => {
    while (peek().kind === 'space') k++;
  };
  const describe = (t: Token) => (t.kind === 'eof' ? 'EOF' : t.kind === 'close' ? '"}}"' : `"${t.value}"`);

  function operand(): Operand | undefined {
    const t = peek();
    switch (t.kind) {
      case 'field': {
        const path: string[] = [];
        while (peek().kind === 'field') path.push(next().value);
        return { kind: 'field', path, pos: t.pos };
      }
      case 'dot':
        next();
        if (peek().kind === 'field') fail(peek().pos, `unexpected "${peek().value}" after "."`);
        return { kind: 'field', path: [], pos: t.pos };
      case 'string':
        next();
        return { kind: 'string', value: t.value, pos: t.pos };
      case 'number':
        next();
        return { kind: 'number', value: Number(t.value), pos: t.pos };
      case 'ident':
        next();
        if (t.value === 'true' || t.value === 'false') return { kind: 'bool', value: t.value === 'true', pos: t.pos };
        if (KEYWORDS.has(t.value)) fail(t.pos, `"${t.value}" is not supported (no control structures or nil in Wisp's templates)`);
        if (!FUNCTIONS.has(t.value)) fail(t.pos, `function "${t.value}" not defined`);
        return { kind: 'func', name: t.value, pos: t.pos };
      case 'lparen': {
        next();
        const commands = pipeline('rparen');
        next(); // the ')'
        const fields: string[] = [];
        while (peek().kind === 'field') fields.push(next().value);
        return { kind: 'pipeline', commands, pos: t.pos, fields };
      }
      default:
        return undefined;
    }
  }

  function command(end: TokenKind): Command {
    skipSpace();
    const pos = peek().pos;
    const args: Operand[] = [];
    for (;;) {
      skipSpace();
      const t = peek();
      if (t.kind === end || t.kind === 'pipe') break;
      if (t.kind === 'eof' || t.kind === 'close') fail(t.pos, end === 'rparen' ? 'unclosed left paren' : `unexpected ${describe(t)}`);
      const o = operand();
      if (!o) fail(t.pos, `unexpected ${describe(t)} in operand`);
      const after = peek();
      if (after.kind !== 'space' && after.kind !== end && after.kind !== 'pipe' && after.kind !== 'rparen') {
        fail(after.pos, `unexpected ${describe(after)} in operand`);
      }
      args.push(o);
    }
    if (args.length === 0) fail(peek().pos, peek().kind === 'pipe' ? 'unexpected "|" in command' : 'missing value for command');
    const head = args[0]!;
    if (head.kind !== 'func' && args.length > 1) fail(args[1]!.pos, `can't give argument to non-function ${text(head)}`);
    return { args, pos };
  }

  function pipeline(end: TokenKind): Command[] {
    const commands = [command(end)];
    while (peek().kind === 'pipe') {
      const bar = next();
      const c = command(end);
      if (c.args[0]!.kind !== 'func') fail(bar.pos, `non-function ${text(c.args[0]!)} after "|"`);
      commands.push(c);
    }
    return commands;
  }

  const nodes: Node[] = [];
  for (;;) {
    const t = next();
    if (t.kind === 'eof') return nodes;
    if (t.kind === 'text') {
      nodes.push({ kind: 'text', text: t.value });
      continue;
    }
    // 'open'
    skipSpace();
    if (peek().kind === 'close') fail(peek().pos, 'missing value for command');
    const commands = pipeline('close');
    next(); // the '}}'
    nodes.push({ kind: 'action', commands, pos: t.pos });
  }
}

/** An operand as the template wrote it, for errors (Go: `at <.PodMeta.Foo>`). */
export function text(o: Operand): string {
  switch (o.kind) {
    case 'field':
      return o.path.length ? o.path.map((p) => `.${p}`).join('') : '.';
    case 'string':
      return JSON.stringify(o.value);
    case 'number':
    case 'bool':
      return String(o.value);
    case 'func':
      return o.name;
    case 'pipeline':
      return `(...)${o.fields.map((p) => `.${p}`).join('')}`;
  }
}

/** Parses `source`; throws TemplateError (`template: <name>:<line>:<col>: <what>`). */
export function parseNodes(name: string, source: string): Node[] {
  const fail = (pos: number, msg: string): never => {
    throw new TemplateError(`template: ${where(name, source, pos)}: ${msg}`);
  };
  return parse(lex(source, fail), fail);
}
