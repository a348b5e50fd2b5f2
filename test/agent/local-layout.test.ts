// `npm start`'s layout (scripts/local-layout.ts) with the real Workload API server and the agent's real data
// dir: a workload of another uid (65534, via setpriv) reaches the socket and gets its SVID, but can neither
// list the state root nor enter the agent's data dir.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedAncestors, LOCAL_MODES, prepareLocalLayout, type LocalLayout } from '../../scripts/local-layout.js';
import { DATA_FILES, openDataDir } from '../../src/agent/data-dir.js';
import { createWorkloadApi } from '../../src/agent/workload-api/handler.js';
import { startWorkloadApiServer, type WorkloadApiServer } from '../../src/agent/workload-api/server.js';
import { createUnixAttestor } from '../../src/agent/workload-api/unix-attestor.js';
import { createTrustDomain, issueX509Svid } from '../helpers/node/agent/identity-fixtures.js';
import { MemoryIdentitySource } from '../helpers/node/agent/memory-identity-source.js';
import { asUid } from '../helpers/node/other-uid.js';

const OTHER_UID = 65534;
const OTHER_ID = 'spiffe://example.org/other-user';
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const mode = (path: string) => statSync(path).mode & 0o777;

let parent: string;
let layout: LocalLayout;

beforeAll(() => {
  parent = mkdtempSync(join(tmpdir(), 'wisp-layout-'));
  layout = prepareLocalLayout(join(parent, '.wisp-local'));
});
afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe("npm start's layout", () => {
  it('opens the root to traversal only, keeps issuer and agent state 0700, and fixes an older 0700 root', () => {
    expect(mode(layout.root)).toBe(LOCAL_MODES.root);
    expect(mode(layout.issuerDir)).toBe(0o700);
    expect(mode(layout.agentDataDir)).toBe(0o700);
    expect(mode(layout.socketDir)).toBe(0o755);
    const old = join(parent, 'old');
    prepareLocalLayout(old);
    chmodSync(old, 0o700);
    chmodSync(join(old, 'agent'), 0o777);
    const fixed = prepareLocalLayout(old);
    expect(mode(fixed.root)).toBe(0o711);
    expect(mode(fixed.agentDataDir)).toBe(0o700);
  });

  it('names the ancestors other users cannot pass through', () => {
    expect(closedAncestors(layout.socketPath)).toEqual(mode(parent) & 0o001 ? [] : [parent]);
  });

  it.skipIf(!isRoot || !hasSetpriv)('serves a workload of another uid over the socket while the data dir stays closed to it', async () => {
    const own = await createTrustDomain('example.org');
    const source = new MemoryIdentitySource(own);
    const svid = await issueX509Svid(own, { entryId: 'e-other', spiffeId: OTHER_ID });
    source.put({ entryId: 'e-other', spiffeId: OTHER_ID, selectors: [{ type: 'unix', value: `uid:${OTHER_UID}` }], hint: '', federatesWith: [], svid });
    const dataDir = await openDataDir(layout.agentDataDir); // as the agent opens it
    await dataDir.saveAgentIdentity(svid.privateKey, svid.certChain);
    // mkdtemp's parent is 0700: open it as a repository checkout would be, so only the layout decides
    chmodSync(parent, 0o755);
    let server: WorkloadApiServer | undefined;
    try {
      server = await startWorkloadApiServer({ socketPath: layout.socketPath, impl: createWorkloadApi({ attest: createUnixAttestor(), source }) });
      const asOther = (args: string[]) => spawnSync(...asUid(OTHER_UID, args), { encoding: 'utf8', timeout: 60_000 });
      const client = await new Promise<string>((done, fail) => {
        const child = spawn(...asUid(OTHER_UID, [resolve('node_modules/.bin/tsx'), resolve('test/helpers/node/agent/workload-client-script.ts'), `unix://${layout.socketPath}`]), {
          env: { ...process.env, HOME: layout.socketDir, TSX_DISABLE_CACHE: '1' },
        });
        let out = '';
        let errOut = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
        child.on('exit', (code) => (code === 0 ? done(out) : fail(new Error(`client exited ${code}: ${errOut}`))));
      });
      const x509 = JSON.parse(client.trim().split('\n')[0]!) as { method: string; ok: boolean; spiffeIds?: string[] };
      expect(x509).toEqual({ method: 'FetchX509SVID', ok: true, spiffeIds: [OTHER_ID] });

      expect(mode(layout.agentDataDir)).toBe(0o700);
      expect(mode(join(layout.agentDataDir, DATA_FILES.AGENT_IDENTITY))).toBe(0o600);
      const listData = asOther(['ls', layout.agentDataDir]);
      expect(listData.status).not.toBe(0);
      expect(listData.stderr).toMatch(/Permission denied/);
      const readKey = asOther(['cat', join(layout.agentDataDir, DATA_FILES.AGENT_IDENTITY)]);
      expect(readKey.status).not.toBe(0);
      expect(readKey.stderr).toMatch(/Permission denied/);
      expect(asOther(['ls', layout.root]).stderr).toMatch(/Permission denied/);
      expect(asOther(['ls', layout.issuerDir]).stderr).toMatch(/Permission denied/);
    } finally {
      await server?.close(200);
    }
  });

  it.skipIf(isRoot && hasSetpriv)('is skipped: needs root and setpriv to run a workload as uid 65534', () => {
    expect(isRoot && hasSetpriv).toBe(false);
  });
});
