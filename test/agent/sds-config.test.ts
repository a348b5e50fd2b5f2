// The agent's SDS config keys: `sds` (SPIRE's sds block, camelCase) and `disableSdsApi`, from file and env.
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/agent/config.js';

const file = (content: unknown) => ({ path: '/etc/wisp/agent.json', content });
const base = { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' };

describe('agent config: sds and disableSdsApi', () => {
  it('leaves both out by default (SDS on, SPIRE names)', () => {
    const c = parseAgentConfig(file(base), {}, {});
    expect(c.sds).toBeUndefined();
    expect(c.disableSdsApi).toBeUndefined();
  });

  it('fills the sds block with SPIRE defaults', () => {
    expect(parseAgentConfig(file({ ...base, sds: { defaultSvidName: 'svid' } }), {}, {}).sds).toEqual({
      defaultSvidName: 'svid',
      defaultBundleName: 'ROOTCA',
      defaultAllBundlesName: 'ALL',
      disableSpiffeCertValidation: false,
    });
  });

  it('reads WISP_SDS as JSON and WISP_DISABLE_SDS_API as true/false', () => {
    const c = parseAgentConfig(file(base), { WISP_SDS: '{"disableSpiffeCertValidation": true, "defaultAllBundlesName": "all"}', WISP_DISABLE_SDS_API: 'true' }, {});
    expect(c.sds).toMatchObject({ disableSpiffeCertValidation: true, defaultAllBundlesName: 'all' });
    expect(c.disableSdsApi).toBe(true);
    expect(parseAgentConfig(file({ ...base, disableSdsApi: false }), {}, {}).disableSdsApi).toBe(false);
  });

  it.each([
    [{ sds: { defaultBundleName: '' } }, /^sds\.defaultBundleName \(from file \/etc\/wisp\/agent.json\): must be a non-empty string/],
    [{ sds: { default_svid_name: 'x' } }, /default_svid_name.*unknown key/],
    [{ sds: { disableSpiffeCertValidation: 'yes' } }, /disableSpiffeCertValidation.*must be true or false/],
    [{ disableSdsApi: 'yes' }, /^disableSdsApi \(from file \/etc\/wisp\/agent.json\): must be true or false/],
  ])('rejects %j', (extra, message) => {
    expect(() => parseAgentConfig(file({ ...base, ...extra }), {}, {})).toThrow(message);
  });
});
