// The agent's k8s_psat node attestor: the `k8sPsat` config block (cluster required, SPIRE's default token
// path, one node attestor only), and the payload read from the token file afresh on every attestation
// (the kubelet rotates it), with clear errors for a missing or non-JWT file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createK8sPsatAttestor } from '../../src/agent/attestor/k8s-psat.js';
import { selectNodeAttestor } from '../../src/agent/attestor/node-attestor.js';
import { K8S_PSAT_DEFAULT_TOKEN_PATH, parseAgentConfig } from '../../src/agent/config.js';

const dir = mkdtempSync(join(tmpdir(), 'wisp-psat-agent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('agent config k8sPsat', () => {
  const file = (content: Record<string, unknown>) => ({ path: '/etc/wisp/agent.json', content: { serverUrl: 'https://wisp.example', trustDomain: 'example.org', ...content } });
  it('enables k8s_psat with SPIRE\'s default token path, from the file or WISP_K8S_PSAT', () => {
    const c = parseAgentConfig(file({ k8sPsat: { cluster: 'prod' } }), {}, {});
    expect(c.k8sPsat).toEqual({ cluster: 'prod', tokenPath: K8S_PSAT_DEFAULT_TOKEN_PATH });
    expect(K8S_PSAT_DEFAULT_TOKEN_PATH).toBe('/var/run/secrets/tokens/spire-agent');
    expect(selectNodeAttestor(c)?.type).toBe('k8s_psat');
    expect(parseAgentConfig(file({}), { WISP_K8S_PSAT: '{"cluster":"c","tokenPath":"/t"}' }, {}).k8sPsat).toEqual({ cluster: 'c', tokenPath: '/t' });
  });
  it('names bad keys and refuses a second node attestor', () => {
    expect(() => parseAgentConfig(file({ k8sPsat: {} }), {}, {})).toThrow(/^k8sPsat\.cluster .*is required/);
    expect(() => parseAgentConfig(file({ k8sPsat: { cluster: 'a/b' } }), {}, {})).toThrow(/^k8sPsat\.cluster .*must be a cluster name/);
    expect(() => parseAgentConfig(file({ k8sPsat: { cluster: 'c', tokenPath: 'rel' } }), {}, {})).toThrow(/^k8sPsat\.tokenPath .*absolute path/);
    expect(() => parseAgentConfig(file({ k8sPsat: { cluster: 'c' } }), {}, { joinToken: 't' })).toThrow(/configure one node attestor only/);
  });
});

describe('k8s_psat agent attestor', () => {
  it('reads the token file again for every payload', async () => {
    const tokenPath = join(dir, 'token');
    const attestor = createK8sPsatAttestor({ cluster: 'prod', tokenPath });
    writeFileSync(tokenPath, 'aaa.bbb.ccc\n');
    expect(await attestor.payload()).toEqual({ cluster: 'prod', token: 'aaa.bbb.ccc' });
    writeFileSync(tokenPath, 'ddd.eee.fff');
    expect(await attestor.payload()).toEqual({ cluster: 'prod', token: 'ddd.eee.fff' });
    expect(attestor.singleUse).toBe(false);
    expect(JSON.stringify(attestor.describe())).not.toContain('ddd');
  });
  it('says what is wrong with a missing or non-JWT token file', async () => {
    await expect(createK8sPsatAttestor({ cluster: 'c', tokenPath: join(dir, 'missing') }).payload()).rejects.toThrow(/k8s_psat: cannot read the service account token at .*missing \(ENOENT\)/);
    writeFileSync(join(dir, 'bad'), 'not a jwt');
    await expect(createK8sPsatAttestor({ cluster: 'c', tokenPath: join(dir, 'bad') }).payload()).rejects.toThrow(/does not hold a JWT/);
  });
});
