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
import { parseNodes, TemplateError, text, where, type Command, type Node, type Operand } from './template-syntax.js';

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

/** An execution failure tied to the operand or command that failed (Go: `at <.PodMeta.Foo>`). */
class ExecError extends TemplateError {
  constructor(
    message: string,
    readonly pos: number,
    readonly at: string,
  ) {
    super(message);
  }
}

/** Runs `f`, tying a failure to the node at `pos` unless an inner node already claimed it. */
function at<T>(pos: number, what: () => string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TemplateError && !(e instanceof ExecError)) throw new ExecError(e.message, pos, what());
    throw e;
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
  if (v.type === 'missing') return v; // Go: a field of <no value> is <no value>
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
  return n < args.length ? `${out}%!(EXTRA ${args.slice(n).map((a) => `${typeName(a)}=${format(a)}`).join(', ')})` : out;
}

function call(name: string, args: Value[]): Value {
  switch (name) {
    case 'index': {
      if (args.length < 1) throw new TemplateError('wrong number of args for index: want at least 1 got 0');
      let v = args[0]!;
      for (const key of args.slice(1)) {
        if (v.type === 'missing' || v.type.kind !== 'map') throw new TemplateError(`error calling index: cannot index a value of type ${typeName(v)}`);
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
      return at(o.pos, () => text(o), () => o.path.reduce(fieldOf, dot));
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
      const input = last;
      last = at(c.pos, () => c.args.map(text).join(' '), () => call(head!.name, input ? [...args, input] : args));
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
  let nodes: Node[];
  try {
    nodes = parseNodes(name, source);
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
          out += at(node.pos, () => node.commands.map((c) => c.args.map(text).join(' ')).join(' | '), () => format(evalPipeline(node.commands, { type, json: data })));
        } catch (e) {
          if (!(e instanceof ExecError)) throw e;
          return err(templateError(`template: ${where(name, source, e.pos)}: executing "${name}" at <${e.at}>: ${e.message}`));
        }
      }
      return ok(out);
    },
  });
}
