// `wisp audit list` in process against the real issuer app (test/helpers/node/in-process-issuer.ts): it
// lists what the admin writes left, filters by action, turns -since durations into RFC 3339, and prints JSON.
import { describe, expect, it } from 'vitest';
import { parseSinceFlag } from '../../src/cli/audit.js';
import { useInProcessWisp } from '../helpers/node/in-process-wisp.js';

const { wisp } = useInProcessWisp();

describe('wisp audit list', () => {
  it('lists admin writes, filters by action and prints JSON', async () => {
    const token = await wisp(['token', 'generate', '-output', 'json']);
    expect(token.code).toBe(0);
    const secret = (JSON.parse(token.stdout) as { token: string }).token;
    const agentId = `spiffe://example.org/spire/agent/join_token/${secret}`;
    expect((await wisp(['entry', 'create', '-parentID', agentId, '-spiffeID', 'spiffe://example.org/web', '-selector', 'unix:uid:1000'])).code).toBe(0);

    const json = await wisp(['audit', 'list', '-since', '1h', '-action', 'join_token.create', '-output', 'json']);
    expect(json.stderr).toBe('');
    const { events } = JSON.parse(json.stdout) as { events: { action: string; principal: string; status: number; objectIds: string[] }[] };
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: 'join_token.create', principal: 'admin-token', status: 201 });
    expect(json.stdout).not.toContain(secret);

    const pretty = await wisp(['audit', 'list', '-principal', 'admin-token']);
    expect(pretty.code).toBe(0);
    const lines = pretty.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z admin-token entry\.batch_create 200 [0-9a-f-]{36} request=[0-9a-f-]{36}$/);

    expect((await wisp(['audit', 'list', '-action', 'agent.ban'])).stdout).toBe('No audit events found\n');
  });

  it('refuses a -since that is neither a time nor a duration, before anything is sent', async () => {
    const run = await wisp(['audit', 'list', '-since', 'yesterday']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^Error: ERR_USAGE: --since "yesterday": /);
    expect(parseSinceFlag('2h', Date.UTC(2026, 0, 2, 12))).toBe('2026-01-02T10:00:00.000Z');
    expect(parseSinceFlag('2026-01-02T00:00:00Z', 0)).toBe('2026-01-02T00:00:00Z');
  });
});
