import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_FILES, openDataDir, writeFileAtomic } from '../../src/agent/data-dir.js';
import { exportPkcs8, generateKeyPair } from '../../src/agent/keys.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('data dir', () => {
  it('creates the directory 0700 and tightens an existing wider one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wisp-dd-'));
    const dir = join(root, 'agent');
    await openDataDir(dir);
    expect(mode(dir)).toBe(0o700);
    await chmod(dir, 0o755);
    await openDataDir(dir);
    expect(mode(dir)).toBe(0o700);
  });

  it('persists key, SVID chain and bundle in 0600 files and loads them back', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'wisp-dd-')), 'agent');
    const dd = await openDataDir(dir);
    expect(await dd.load()).toEqual({});
    const key = await exportPkcs8((await generateKeyPair()).privateKey);
    const chain = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5])];
    const bundle = { keys: [{ kty: 'EC', use: 'x509-svid' }], spiffe_sequence: 3 };
    await dd.saveAgentKey(key);
    await dd.saveAgentSvid(chain);
    await dd.saveBundle(bundle);
    for (const f of Object.values(DATA_FILES)) expect(mode(join(dir, f))).toBe(0o600);
    const again = await (await openDataDir(dir)).load();
    expect(again.agentKey).toEqual(key);
    expect(again.agentSvidChain).toEqual(chain);
    expect(again.bundle).toEqual(bundle);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await dd.clearAgentIdentity();
    expect(await dd.load()).toEqual({ bundle });
  });

  it('replaces files atomically: the old content until rename, no temp files left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wisp-dd-'));
    const p = join(dir, 'f');
    await writeFileAtomic(p, 'one');
    const inode = statSync(p).ino;
    await writeFileAtomic(p, 'two');
    expect(statSync(p).ino).not.toBe(inode); // a new file renamed over the old one, not rewritten in place
    expect(readdirSync(dir)).toEqual(['f']);
    expect(mode(p)).toBe(0o600);
  });
});
