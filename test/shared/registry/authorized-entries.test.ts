// SPIRE's authorized-entries algorithm over an in-memory list (pure; runs on Node and workerd).
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/shared/registry/entry.js';
import { authorizedEntriesOf, walkAuthorizedEntries } from '../../../src/shared/registry/authorized-entries.js';
import { parseSpiffeId, type SpiffeId } from '../../../src/shared/spiffe/id.js';
import { makeEntry } from '../../helpers/shared/entry.js';

const id = (p: string) => parseSpiffeId(`spiffe://example.org${p}`);
const AGENT = id('/spire/agent/join_token/abc');
const SERVER = id('/spire/server');
const NOW = 1000;

function entry(name: string, spiffeId: SpiffeId, parentId: SpiffeId, selectors: string[] = ['t:x'], expiresAt = 0): Entry {
  return makeEntry({ id: name, spiffeId, parentId, selectors: selectors.map((s) => ({ type: s.split(':')[0]!, value: s.split(':').slice(1).join(':') })), expiresAt });
}

const NODE = [{ type: 'join_token', value: 'abc' }, { type: 'region', value: 'eu' }];
const all = [
  entry('direct', id('/direct'), AGENT),
  entry('alias', id('/cluster'), SERVER, ['join_token:abc']),
  entry('alias-miss', id('/cluster-us'), SERVER, ['join_token:abc', 'region:us']),
  entry('alias-child', id('/in-cluster'), id('/cluster')),
  entry('miss-child', id('/in-us'), id('/cluster-us')),
  entry('deep', id('/deep'), id('/in-cluster')),
  entry('expired', id('/old'), AGENT, ['t:x'], NOW),
  entry('behind-expired', id('/behind'), id('/old')),
  entry('stranger', id('/stranger'), id('/spire/agent/other')),
];

describe('authorizedEntriesOf', () => {
  it('returns agent-parented entries, matching node aliases and their descendants, not expired ones', async () => {
    const got = (await authorizedEntriesOf(all, AGENT, SERVER, NODE, NOW)).map((e) => e.id).sort();
    expect(got).toEqual(['alias', 'alias-child', 'deep', 'direct']);
  });

  it('gives an agent without node selectors only what hangs off its own ID', async () => {
    expect((await authorizedEntriesOf(all, AGENT, SERVER, [], NOW)).map((e) => e.id)).toEqual(['direct']);
  });
});

describe('walkAuthorizedEntries', () => {
  it('asks for one level at a time and stops on cycles', async () => {
    const a = entry('a', id('/a'), AGENT);
    const b = entry('b', id('/b'), id('/a'));
    const a2 = entry('a2', id('/a'), id('/b'));
    const calls: string[][] = [];
    const got = await walkAuthorizedEntries(AGENT, [], async (parents) => {
      calls.push(parents);
      return [a, b, a2].filter((e) => parents.includes(e.parentId));
    });
    expect(got.map((e) => e.id).sort()).toEqual(['a', 'a2', 'b']);
    expect(calls).toEqual([[AGENT], [id('/a')], [id('/b')]]);
  });
});
