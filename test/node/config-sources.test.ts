// File < env < flags, written once for the agent and the CLI (src/node/config-sources.ts): which source
// wins, what counts as unset, and how the file's errors read.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { mergeConfigSources, parseMergedConfig, readConfigFile, type ConfigLayout } from '../../src/node/config-sources.js';
import { required } from '../../src/shared/config/schema.js';

type Key = 'url' | 'socket';
const layout: ConfigLayout<Key> = {
  keys: ['url', 'socket'],
  env: (key) => (key === 'socket' ? ['LOW_SOCKET', 'APP_SOCKET'] : ['APP_URL']),
  flag: (key) => `--${key}`,
};
const file = (content: unknown) => ({ path: '/etc/app.json', content });
const sources = (m: Map<Key, { value: unknown; source: string }>) => Object.fromEntries(m);

describe('mergeConfigSources', () => {
  it.each([
    ['file only', { url: 'f' }, {}, {}, { url: { value: 'f', source: 'file /etc/app.json' } }],
    ['env over file', { url: 'f' }, { APP_URL: 'e' }, {}, { url: { value: 'e', source: 'env APP_URL' } }],
    ['flag over env', { url: 'f' }, { APP_URL: 'e' }, { url: 'x' }, { url: { value: 'x', source: 'flag --url' } }],
    ['empty env and undefined flag are unset', { url: 'f' }, { APP_URL: '' }, { url: undefined }, { url: { value: 'f', source: 'file /etc/app.json' } }],
    ['null in the file is unset', { url: null }, {}, {}, {}],
    ['later env variable of a key wins', {}, { LOW_SOCKET: 'a', APP_SOCKET: 'b' }, {}, { socket: { value: 'b', source: 'env APP_SOCKET' } }],
    ['earlier env variable alone', {}, { LOW_SOCKET: 'a' }, {}, { socket: { value: 'a', source: 'env LOW_SOCKET' } }],
  ] as const)('%s', (_name, content, env, flags, expected) => {
    expect(sources(mergeConfigSources(layout, file(content), env, flags))).toEqual(expected);
  });

  it('refuses a file that is not an object, an unknown file key and an unknown flag key', () => {
    expect(() => mergeConfigSources(layout, file([]), {}, {})).toThrow(/^config file \/etc\/app.json: must be a JSON object$/);
    expect(() => mergeConfigSources(layout, file({ URL: 'x' }), {}, {})).toThrow(/^URL \(from file \/etc\/app.json\): unknown key; known keys: url, socket$/);
    expect(() => mergeConfigSources(layout, undefined, {}, { nope: 1 } as never)).toThrow(TypeError);
  });
});

describe('parseMergedConfig', () => {
  const schema = v.object({ url: required(v.string('must be text'), 'is required (APP_URL)'), socket: v.optional(v.string('must be text'), '/s') });
  it('names the key and the source of the bad value; a missing key has no source', () => {
    const parse = (env: Record<string, string>, flags: Partial<Record<Key, unknown>>) => () => parseMergedConfig(layout, mergeConfigSources(layout, undefined, env, flags), schema);
    expect(parse({ APP_URL: 'u' }, {})()).toEqual({ url: 'u', socket: '/s' });
    expect(parse({}, {})).toThrow(/^url: is required \(APP_URL\)$/);
    expect(parse({ APP_URL: 'u' }, { socket: 5 })).toThrow(/^socket \(from flag --socket\): must be text$/);
  });
});

describe('readConfigFile', () => {
  it('reads JSON, and says why it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wisp-config-'));
    writeFileSync(join(dir, 'ok.json'), '{"url":"x"}');
    writeFileSync(join(dir, 'bad.json'), '{');
    expect(readConfigFile(join(dir, 'ok.json')).content).toEqual({ url: 'x' });
    expect(() => readConfigFile(join(dir, 'bad.json'))).toThrow(/^config file .*bad\.json: not valid JSON/);
    expect(() => readConfigFile(join(dir, 'missing.json'))).toThrow(/^config file .*missing\.json: cannot read \(ENOENT\)$/);
  });
});
