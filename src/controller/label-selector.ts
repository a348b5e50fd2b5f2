/**
 * Kubernetes label selectors (metav1.LabelSelector, as `LabelSelectorAsSelector` reads them): matchLabels
 * and matchExpressions (In, NotIn, Exists, DoesNotExist), all requirements ANDed; an empty selector selects
 * everything. Compiled once so a bad operator or value list is refused when the resource is read, not per pod.
 * @module
 */
import { WispError } from '../shared/errors.js';
import { err, ok, type Result } from '../shared/result.js';

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

interface Requirement {
  key: string;
  operator: LabelSelectorOperator;
  values: readonly string[];
}

/** A validated selector; `matches` reads an object's labels (absent labels = none). */
export interface CompiledLabelSelector {
  readonly requirements: readonly Requirement[];
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
}

const OPERATORS: readonly LabelSelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function compile(input: unknown, field: string): Requirement[] {
  if (input === undefined || input === null) return [];
  if (!isObject(input)) throw new Error(`${field} must be an object`);
  for (const key of Object.keys(input)) {
    if (key !== 'matchLabels' && key !== 'matchExpressions') throw new Error(`${field} has an unknown field "${key}"`);
  }
  const requirements: Requirement[] = [];
  const { matchLabels, matchExpressions } = input;
  if (matchLabels !== undefined && matchLabels !== null) {
    if (!isObject(matchLabels)) throw new Error(`${field}.matchLabels must be a map of strings`);
    for (const [key, value] of Object.entries(matchLabels)) {
      if (typeof value !== 'string') throw new Error(`${field}.matchLabels["${key}"] must be a string`);
      requirements.push({ key, operator: 'In', values: [value] });
    }
  }
  if (matchExpressions !== undefined && matchExpressions !== null) {
    if (!Array.isArray(matchExpressions)) throw new Error(`${field}.matchExpressions must be a list`);
    matchExpressions.forEach((e: unknown, i) => {
      const at = `${field}.matchExpressions[${i}]`;
      if (!isObject(e)) throw new Error(`${at} must be an object`);
      const { key, operator, values = [] } = e;
      if (typeof key !== 'string' || key === '') throw new Error(`${at}.key must be a non-empty string`);
      if (!OPERATORS.includes(operator as LabelSelectorOperator)) {
        throw new Error(`${at}: "${String(operator)}" is not a valid label selector operator (${OPERATORS.join(', ')})`);
      }
      if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) throw new Error(`${at}.values must be a list of strings`);
      const op = operator as LabelSelectorOperator;
      if ((op === 'In' || op === 'NotIn') && values.length === 0) throw new Error(`${at}: values must be non-empty for operator ${op}`);
      if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) throw new Error(`${at}: values must be empty for operator ${op}`);
      requirements.push({ key, operator: op, values: values as string[] });
    });
  }
  return requirements;
}

function satisfies(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && r.values.includes(labels[r.key]!);
    case 'NotIn':
      return !has || !r.values.includes(labels[r.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/**
 * Compiles a LabelSelector; an absent one (undefined/null) selects everything, as does `{}`.
 * The error (ERR_BAD_REQUEST) names the field, e.g. `podSelector.matchExpressions[0]: "Has" is not a valid ...`.
 * @example compileLabelSelector({ matchLabels: { app: 'web' } }, 'podSelector')
 */
export function compileLabelSelector(input: unknown, field = 'selector'): Result<CompiledLabelSelector> {
  let requirements: Requirement[];
  try {
    requirements = compile(input, field);
  } catch (e) {
    return err(new WispError('ERR_BAD_REQUEST', (e as Error).message).toData());
  }
  return ok({ requirements, matches: (labels) => requirements.every((r) => satisfies(r, labels ?? {})) });
}
