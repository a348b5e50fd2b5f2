import { describe, expect, it } from 'vitest';
import { compileLabelSelector } from '../../../src/controller/label-selector.js';

function selector(input: unknown) {
  const r = compileLabelSelector(input, 'podSelector');
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

function problem(input: unknown): string {
  const r = compileLabelSelector(input, 'podSelector');
  if (r.ok) throw new Error('compiled');
  expect(r.error.code).toBe('ERR_BAD_REQUEST');
  return r.error.message;
}

const web = { app: 'web', tier: 'front' };
const db = { app: 'db' };

describe('compileLabelSelector', () => {
  it('an absent or empty selector selects everything, labelled or not', () => {
    for (const input of [undefined, null, {}, { matchLabels: {} }, { matchExpressions: [] }]) {
      const s = selector(input);
      expect([s.matches(web), s.matches(undefined), s.matches({})]).toEqual([true, true, true]);
    }
  });

  it('matchLabels: every pair must be present', () => {
    const s = selector({ matchLabels: { app: 'web', tier: 'front' } });
    expect(s.matches(web)).toBe(true);
    expect(s.matches({ app: 'web' })).toBe(false);
    expect(s.matches({ app: 'web', tier: 'back' })).toBe(false);
    expect(s.matches(undefined)).toBe(false);
  });

  it.each([
    ['In', ['web', 'api'], [true, false, false]],
    ['NotIn', ['web', 'api'], [false, true, true]],
    ['Exists', undefined, [true, true, false]],
    ['DoesNotExist', undefined, [false, false, true]],
  ] as const)('matchExpressions %s', (operator, values, expected) => {
    const s = selector({ matchExpressions: [{ key: 'app', operator, ...(values ? { values } : {}) }] });
    expect([s.matches(web), s.matches(db), s.matches({ other: 'x' })]).toEqual(expected);
  });

  it('matchLabels and matchExpressions are ANDed', () => {
    const s = selector({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }, { key: 'canary', operator: 'DoesNotExist' }] });
    expect(s.matches(web)).toBe(true);
    expect(s.matches({ ...web, canary: 'true' })).toBe(false);
    expect(s.matches({ app: 'web', tier: 'back' })).toBe(false);
  });

  it.each([
    [{ matchExpressions: [{ key: 'app', operator: 'Has', values: ['x'] }] }, 'podSelector.matchExpressions[0]: "Has" is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)'],
    [{ matchExpressions: [{ key: 'app', operator: 'in', values: ['x'] }] }, 'podSelector.matchExpressions[0]: "in" is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)'],
    [{ matchExpressions: [{ key: 'app', operator: 'In' }] }, 'podSelector.matchExpressions[0]: values must be non-empty for operator In'],
    [{ matchExpressions: [{ key: 'app', operator: 'NotIn', values: [] }] }, 'podSelector.matchExpressions[0]: values must be non-empty for operator NotIn'],
    [{ matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] }, 'podSelector.matchExpressions[0]: values must be empty for operator Exists'],
    [{ matchExpressions: [{ operator: 'Exists' }] }, 'podSelector.matchExpressions[0].key must be a non-empty string'],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: [1] }] }, 'podSelector.matchExpressions[0].values must be a list of strings'],
    [{ matchExpressions: {} }, 'podSelector.matchExpressions must be a list'],
    [{ matchLabels: { app: 1 } }, 'podSelector.matchLabels["app"] must be a string'],
    [{ matchLabels: ['app'] }, 'podSelector.matchLabels must be a map of strings'],
    [{ matchLabel: { app: 'web' } }, 'podSelector has an unknown field "matchLabel"'],
    ['app=web', 'podSelector must be an object'],
  ])('%j → %s', (input, message) => {
    expect(problem(input)).toBe(message);
  });
});
