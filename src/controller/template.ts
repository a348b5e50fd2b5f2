/**
 * The subset of Go's text/template that spire-controller-manager's ClusterSPIFFEID templates use: literal
 * text, actions `{{ .PodMeta.Namespace }}`, trim markers `{{-` / `-}}`, comments `{{/* ... *\/}}`, string and
 * number literals, the builtins `index`, `len`, `print`, `printf` (verbs %s %v %d %q %%), pipelines `|` and
 * parentheses. No control structures or variables: the upstream docs use none, and a template that asks for
 * one is refused at parse time rather than rendered differently. A real lexer and parser, errors name the
 * template, line and column (`template: spiffeIDTemplate:1:12: unexpected "}" in operand`).
 *
 * Execution follows Go: data is typed (`TemplateType`), a field the type lacks is an error, a field absent
 * from the JSON object is its zero value, a missing map key reached by a field (`.PodMeta.Labels.app`)
 * prints `<no value>` and one reached by `index` prints "" (Go's zero value of the map's element).
 * @module
 */
import { err, ok, type Result } from '../shared/result.js';
import { WispError } from '../shared/errors.js';

// ---------- types of the data ----------

/** A Go type as far as templates see it: scalars, map[string]string, a struct, or something opaque. */
export type TemplateType =
  | { kind: 'string' | 'int' | 'bool' | 'map' }
  | { kind: 'struct'; name: string; fields: Readonly<Record<string, TemplateType>>; jsonName: (goName: string) => string }
  | { kind: 'opaque'; name: string };

/** A value during execution: its type and its JSON form; `undefined` json = Go's zero value. */
interface Value {
  type: TemplateType | 'missing';
  json: unknown;
}

const NO_VALUE = '<no value>';

// ---------- lexer ----------

type TokenKind = 'text' | 'open' | 'close' | 'field' | 'dot' | 'ident' | 'string' | 'number' | 'pipe' | 'lparen' | 'rparen' | 'space' | 'char' | 'eof';
interface Token {
  kind: TokenKind;
  value: string;
  pos: number;
}

class TemplateError extends Error {}

/** Where a position is, as Go reports it: `name:line:col`. */
function where(name: string, src: string, pos: number): string {
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
    const trimLeft = src.startsWith('{{- ', open) || src.startsWith('{{-\t', open) || src.startsWith('{{-\n', open);
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

type Operand =
  | { kind: 'field'; path: string[]; pos: number } // path [] is the dot itself
  | { kind: 'string'; value: string; pos: number }
  | { kind: 'number'; value: number; pos: number }
  | { kind: 'bool'; value: boolean; pos: number }
  | { kind: 'func'; name: string; pos: number }
  | { kind: 'pipeline'; commands: Command[]; pos: number; fields: string[] };
interface Command {
  args: Operand[];
  pos: number;
}
type Node = { kind: 'text'; text: string } | { kind: 'action'; commands: Command[]; pos: number };

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
    if (args.length === 0) fail(peek().pos, peek().kind === 'pipe' ? 'missing command before "|"' : 'missing value for command');
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

function text(o: Operand): string {
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

// ---------- execution ----------

function zero(type: TemplateType): unknown {
  switch (type.kind) {
    case 'string':
      return '';
    case 'int':
      return 0;
    case 'bool':
      return false;
    case 'map':
    case 'struct':
      return {};
    case 'opaque':
      return undefined;
  }
}

function typeName(v: Value): string {
  if (v.type === 'missing') return 'missing value';
  if (v.type.kind === 'struct' || v.type.kind === 'opaque') return v.type.name;
  return v.type.kind === 'map' ? 'map[string]string' : v.type.kind;
}

function stringOf(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function fieldOf(v: Value, name: string): Value {
  if (v.type === 'missing') throw new TemplateError(`can't evaluate field ${name} of a missing value`);
  if (v.type.kind === 'map') {
    const m = (v.json ?? {}) as Record<string, unknown>;
    return Object.hasOwn(m, name) ? { type: { kind: 'string' }, json: stringOf(m[name]) ?? '' } : { type: 'missing', json: undefined };
  }
  if (v.type.kind !== 'struct') throw new TemplateError(`can't evaluate field ${name} in type ${typeName(v)}`);
  const t = v.type.fields[name];
  if (!t) throw new TemplateError(`can't evaluate field ${name} in type ${v.type.name}`);
  const obj = (v.json ?? {}) as Record<string, unknown>;
  const raw = obj[v.type.jsonName(name)];
  return { type: t, json: raw === undefined || raw === null ? zero(t) : raw };
}

/** Go's fmt %v of the values templates can print. */
function format(v: Value): string {
  if (v.type === 'missing') return NO_VALUE;
  switch (v.type.kind) {
    case 'string':
      return stringOf(v.json) ?? '';
    case 'int':
    case 'bool':
      return String(v.json);
    case 'map': {
      const m = (v.json ?? {}) as Record<string, unknown>;
      return `map[${Object.keys(m)
        .sort()
        .map((key) => `${key}:${String(m[key])}`)
        .join(' ')}]`;
    }
    default:
      throw new TemplateError(`cannot print a value of type ${typeName(v)} (Wisp prints strings, numbers, booleans and maps)`);
  }
}

const str = (s: string): Value => ({ type: { kind: 'string' }, json: s });
const isString = (v: Value) => v.type !== 'missing' && v.type.kind === 'string';

function printf(fmt: string, args: Value[]): string {
  let n = 0;
  const out = fmt.replace(/%(.)/g, (_, verb: string) => {
    if (verb === '%') return '%';
    const a = args[n++];
    if (!a) return `%!${verb}(MISSING)`;
    if (verb === 's' || verb === 'v') return format(a);
    if (verb === 'q') return JSON.stringify(format(a));
    if (verb === 'd') return a.type !== 'missing' && a.type.kind === 'int' ? format(a) : `%!d(${typeName(a)}=${format(a)})`;
    throw new TemplateError(`printf verb %${verb} is not supported (use %s %v %d %q)`);
  });
  return n < args.length ? `${out}%!(EXTRA ${args.slice(n).map(format).join(', ')})` : out;
}

function call(name: string, args: Value[]): Value {
  switch (name) {
    case 'index': {
      if (args.length < 1) throw new TemplateError('wrong number of args for index: want at least 1 got 0');
      let v = args[0]!;
      for (const key of args.slice(1)) {
        if (v.type === 'missing' || v.type.kind !== 'map') throw new TemplateError(`error calling index: can't index item of type ${typeName(v)}`);
        if (!isString(key)) throw new TemplateError(`error calling index: value has type ${typeName(key)}; should be string`);
        const m = (v.json ?? {}) as Record<string, unknown>;
        v = str(stringOf(m[key.json as string]) ?? ''); // a missing key is the zero value, as in Go
      }
      return v;
    }
    case 'len': {
      if (args.length !== 1) throw new TemplateError(`wrong number of args for len: want 1 got ${args.length}`);
      const v = args[0]!;
      if (isString(v)) return { type: { kind: 'int' }, json: new TextEncoder().encode(v.json as string).length };
      if (v.type !== 'missing' && v.type.kind === 'map') return { type: { kind: 'int' }, json: Object.keys(v.json ?? {}).length };
      throw new TemplateError(`error calling len: len of type ${typeName(v)}`);
    }
    case 'print':
      // fmt.Sprint: a space between operands when neither is a string
      return str(args.map((a, i) => (i > 0 && !isString(a) && !isString(args[i - 1]!) ? ' ' : '') + format(a)).join(''));
    case 'printf': {
      const [f, ...rest] = args;
      if (!f || !isString(f)) throw new TemplateError('printf needs a format string');
      return str(printf(f.json as string, rest));
    }
  }
  throw new TemplateError(`function "${name}" not defined`);
}

function evalOperand(o: Operand, dot: Value): Value {
  switch (o.kind) {
    case 'field':
      return o.path.reduce(fieldOf, dot);
    case 'string':
      return str(o.value);
    case 'number':
      return { type: { kind: 'int' }, json: o.value };
    case 'bool':
      return { type: { kind: 'bool' }, json: o.value };
    case 'func':
      return call(o.name, []);
    case 'pipeline':
      return o.fields.reduce(fieldOf, evalPipeline(o.commands, dot));
  }
}

function evalPipeline(commands: Command[], dot: Value): Value {
  let last: Value | undefined;
  for (const c of commands) {
    const [head, ...rest] = c.args;
    if (head!.kind === 'func') {
      const args = rest.map((a) => evalOperand(a, dot));
      last = call(head!.name, last ? [...args, last] : args);
    } else {
      last = evalOperand(head!, dot);
    }
  }
  return last!;
}

// ---------- the compiled template ----------

export interface Template {
  /** the name errors carry, e.g. `spiffeIDTemplate` */
  readonly name: string;
  readonly source: string;
  /** Renders with `data` typed as `type`; errors name the action's position. */
  execute(type: TemplateType, data: unknown): Result<string>;
}

const templateError = (message: string) => new WispError('ERR_BAD_REQUEST', message).toData();

/**
 * Parses a template; the error (ERR_BAD_REQUEST) is Go-shaped: `template: <name>:<line>:<col>: <what>`.
 * @example parseTemplate('spiffeIDTemplate', 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}')
 */
export function parseTemplate(name: string, source: string): Result<Template> {
  const fail = (pos: number, msg: string): never => {
    throw new TemplateError(`template: ${where(name, source, pos)}: ${msg}`);
  };
  let nodes: Node[];
  try {
    nodes = parse(lex(source, fail), fail);
  } catch (e) {
    if (e instanceof TemplateError) return err(templateError(e.message));
    throw e;
  }
  return ok({
    name,
    source,
    execute(type, data) {
      let out = '';
      for (const node of nodes) {
        if (node.kind === 'text') {
          out += node.text;
          continue;
        }
        try {
          out += format(evalPipeline(node.commands, { type, json: data }));
        } catch (e) {
          if (!(e instanceof TemplateError)) throw e;
          const action = source.slice(node.pos, source.indexOf('}}', node.pos) + 2);
          return err(templateError(`template: ${where(name, source, node.pos)}: executing "${name}" at <${action}>: ${e.message}`));
        }
      }
      return ok(out);
    },
  });
}
