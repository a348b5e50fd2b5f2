import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_FILES, LEGACY_DATA_FILES, openDataDir, writeFileAtomic } from '../../src/agent/data-dir.js';
import { createJoinTokenAttestor } from '../../src/agent/attestor/join-token.js';
import { toPem } from '../../src/shared/encoding/pem.js';
import { exportPkcs8, generateKeyPair } from '../../src/agent/keys.js';
import { useAgentHarness } from '../helpers/node/agent/agent-harness.js';

const mode = (p: string) => statSync(p).mode & 0o777;
const createHarness = useAgentHarness();

async function attestedHarnessDir() {
  const h = await createHarness();
  await h.identity.start();
  return { h, dd: h.dataDir, dir: h.dataDirPath };
}

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
    const key = exportPkcs8(generateKeyPair().privateKey);
    const chain = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5])];
    const bundle = { keys: [{ kty: 'EC', use: 'x509-svid' }], spiffe_sequence: 3 };
    await dd.saveAgentIdentity(key, chain);
    await dd.saveBundle(bundle);
    await dd.writeSvidCache('{}');
    for (const f of Object.values(DATA_FILES)) expect(mode(join(dir, f))).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(Object.values(DATA_FILES).sort()); // key and SVID: one file
    const again = await (await openDataDir(dir)).load();
    expect(again.agentKey).toEqual(key);
    expect(again.agentSvidChain).toEqual(chain);
    expect(again.bundle).toEqual(bundle);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await dd.clearAgentIdentity();
    expect(await dd.load()).toEqual({ bundle });
  });

  it('reads the old two-file identity layout and rewrites it as the one identity file', async () => {
    const { h, dd, dir } = await attestedHarnessDir();
    // what an older agent left: key and SVID in two files, no identity file
    const { agentKey, agentSvidChain } = await dd.load();
    const identityFile = join(dir, DATA_FILES.AGENT_IDENTITY);
    const before = readFileSync(identityFile, 'utf8');
    rmSync(identityFile);
    writeFileSync(join(dir, LEGACY_DATA_FILES.AGENT_KEY), toPem('PRIVATE KEY', agentKey!), { mode: 0o600 });
    writeFileSync(join(dir, LEGACY_DATA_FILES.AGENT_SVID), agentSvidChain!.map((c) => toPem('CERTIFICATE', c)).join(''), { mode: 0o600 });

    const again = await h.restart(undefined);
    const { svid } = await again.identity.start();
    expect(svid.certChain).toEqual(agentSvidChain);
    expect(h.issuer.callsTo('/attest').length).toBe(1); // no re-attestation
    // the expected revision names the agent of the last /sync call: read it once this sync has arrived
    const synced = await again.client.sync({});
    expect(synced).toMatchObject({ revision: await h.issuer.revision() });
    expect(readFileSync(identityFile, 'utf8')).toBe(before);
    expect(mode(identityFile)).toBe(0o600);
    for (const f of Object.values(LEGACY_DATA_FILES)) expect(existsSync(join(dir, f))).toBe(false);
    await h.close();
  });

  it('a legacy pair left mismatched by an interrupted renewal is not migrated: the agent attests again', async () => {
    const { h, dd, dir } = await attestedHarnessDir();
    const { agentSvidChain } = await dd.load();
    rmSync(join(dir, DATA_FILES.AGENT_IDENTITY));
    // the old renewal order: the new key was written, then the process died before the new SVID was
    writeFileSync(join(dir, LEGACY_DATA_FILES.AGENT_KEY), toPem('PRIVATE KEY', exportPkcs8(generateKeyPair().privateKey)));
    writeFileSync(join(dir, LEGACY_DATA_FILES.AGENT_SVID), agentSvidChain!.map((c) => toPem('CERTIFICATE', c)).join(''));
    const token2 = await h.issuer.createJoinToken();
    const again = await h.restart(createJoinTokenAttestor(token2));
    const { svid } = await again.identity.start();
    expect(svid.spiffeId).toBe(`spiffe://example.org/spire/agent/join_token/${token2}`);
    expect(readdirSync(dir).sort()).toEqual([DATA_FILES.AGENT_IDENTITY, DATA_FILES.BUNDLE].sort());
    await h.close();
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
