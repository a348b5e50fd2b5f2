// The SPIRE operator's first commands, in process against the real issuer app
// (test/helpers/node/in-process-issuer.ts): entry show/count -federatesWith/-hint/-downstream, agent list/count
// filters, agent purge, bundle count, and wisp validate of a wrangler.toml through the issuer's parser.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseExpiresBeforeFlag } from '../../src/cli/agent.js';
import { parseSpiffeId } from '../../src/shared/spiffe/id.js';
import { useInProcessWisp } from '../helpers/node/in-process-wisp.js';

const cli = useInProcessWisp();
const { wisp } = cli;
const DAY = 86_400;
const now = () => Math.floor(Date.now() / 1000);
const ids = (stdout: string) => [...stdout.matchAll(/^SPIFFE ID\s+: (\S+)$/gm)].map((m) => m[1]!.split('/').pop()).sort();

describe('wisp entry show / count: -federatesWith, -matchFederatesWithOn, -hint, -downstream', () => {
  beforeAll(async () => {
    const parent = 'spiffe://example.org/spire/agent/join_token/fed';
    const create = (name: string, extra: string[]) => wisp(['entry', 'create', '-parentID', parent, '-spiffeID', `spiffe://example.org/fed/${name}`, '-selector', 'unix:uid:1', ...extra]);
    for (const run of [
      await create('ab', ['-federatesWith', 'spiffe://a.test', '-federatesWith', 'b.test', '-hint', 'web']),
      await create('a', ['-federatesWith', 'a.test', '-downstream']),
      await create('plain', []),
    ]) expect(run).toMatchObject({ code: 0, stderr: '' });
  });

  it('filters on the issuer with SPIRE flags (default superset)', async () => {
    const show = async (...args: string[]) => {
      const run = await wisp(['entry', 'show', '-parentID', 'spiffe://example.org/spire/agent/join_token/fed', ...args]);
      expect(run).toMatchObject({ code: 0, stderr: '' });
      return ids(run.stdout);
    };
    expect(await show('-federatesWith', 'spiffe://a.test')).toEqual(['a', 'ab']);
    expect(await show('-federatesWith', 'a.test', '-matchFederatesWithOn', 'exact')).toEqual(['a']);
    expect(await show('-federatesWith', 'b.test', '-federatesWith', 'c.test', '-matchFederatesWithOn', 'any')).toEqual(['ab']);
    expect(await show('-hint', 'web')).toEqual(['ab']);
    expect(await show('-downstream')).toEqual(['a']);
    const count = await wisp(['entry', 'count', '-federatesWith', 'a.test', '-parentID', 'spiffe://example.org/spire/agent/join_token/fed']);
    expect(count.stdout).toBe('2 registration entries\n');
  });

  it('refuses a bad trust domain or match mode before sending', async () => {
    const bad = await wisp(['entry', 'show', '-federatesWith', 'spiffe://A_B']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^Error: ERR_\w+: --federatesWith "spiffe:\/\/A_B": /);
    const mode = await wisp(['entry', 'show', '-federatesWith', 'a.test', '-matchFederatesWithOn', 'all']);
    expect(mode.stderr).toMatch(/--matchFederatesWithOn "all": must be one of exact, subset, superset, any/);
  });
});

describe('wisp agent list / count / purge', () => {
  const agents = () => cli.issuer.deps.stores.agents;
  const seed = async (name: string, type: string, expiresAt: number, selectors: { type: string; value: string }[] = []) => {
    const spiffeId = parseSpiffeId(`spiffe://example.org/spire/agent/${type}/${name}`);
    await agents().upsertAttested({ spiffeId, attestationType: type, serialNumber: '0a', expiresAt, nodeSelectors: selectors }, now());
    return spiffeId;
  };

  beforeAll(async () => {
    await seed('prod', 'x509pop', now() + DAY, [{ type: 'x509pop', value: 'subject:cn:prod' }]);
    await seed('stale', 'x509pop', now() - 40 * DAY);
    await seed('recent', 'join_token', now() - 2 * DAY);
    await agents().ban(await seed('banned', 'join_token', now() - 40 * DAY), now());
  });

  it('list filters: -attestationType, -selector, -banned, -expiresBefore', async () => {
    const list = async (...args: string[]) => {
      const run = await wisp(['agent', 'list', ...args]);
      expect(run).toMatchObject({ code: 0, stderr: '' });
      return ids(run.stdout);
    };
    expect(await list('-attestationType', 'x509pop')).toEqual(['prod', 'stale']);
    expect(await list('-selector', 'x509pop:subject:cn:prod')).toEqual(['prod']);
    expect(await list('-banned', 'true')).toEqual(['banned']);
    expect(await list('-attestationType', 'join_token', '-banned', 'false')).toEqual(['recent']);
    expect(await list('-expiresBefore', new Date((now() - 30 * DAY) * 1000).toISOString())).toEqual(['banned', 'stale']);
    expect((await wisp(['agent', 'count', '-banned', 'true'])).stdout).toBe('1 attested agent\n');
    const bad = await wisp(['agent', 'list', '-banned', 'maybe']);
    expect(bad).toMatchObject({ code: 1, stderr: 'Error: ERR_USAGE: --banned "maybe": must be true or false\n' });
  });

  it('-expiresBefore takes RFC 3339, a date and SPIRE\'s Go layout', () => {
    expect(parseExpiresBeforeFlag('2026-01-02T00:00:00Z')).toBe(Date.UTC(2026, 0, 2) / 1000);
    expect(parseExpiresBeforeFlag('2026-01-02')).toBe(Date.UTC(2026, 0, 2) / 1000);
    expect(parseExpiresBeforeFlag('2026-01-02 15:04:05 -0700 MST')).toBe(Date.UTC(2026, 0, 2, 22, 4, 5) / 1000);
    expect(() => parseExpiresBeforeFlag('next week')).toThrow(/--expiresBefore "next week"/);
  });

  it('purge: -dryRun lists, then agents expired over 30 days are deleted (banned ones kept)', async () => {
    const dry = await wisp(['agent', 'purge', '-dryRun']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^Found 1 expired agent \(dry run: nothing deleted\)\n\nWould purge spiffe:\/\/example\.org\/spire\/agent\/x509pop\/stale \(SVID expired \d{4}-/);
    expect(await agents().get(parseSpiffeId('spiffe://example.org/spire/agent/x509pop/stale'))).toBeDefined();

    const run = await wisp(['agent', 'purge']);
    expect(run.stdout).toMatch(/^Found 1 expired agent\n\nPurged spiffe:\/\/example\.org\/spire\/agent\/x509pop\/stale /);
    expect(await agents().get(parseSpiffeId('spiffe://example.org/spire/agent/x509pop/stale'))).toBeUndefined();
    expect(await agents().get(parseSpiffeId('spiffe://example.org/spire/agent/join_token/banned'))).toMatchObject({ banned: true });

    const recent = await wisp(['agent', 'purge', '-expiredFor', '24h', '-output', 'json']);
    expect((JSON.parse(recent.stdout) as { agents: { spiffeId: string }[] }).agents.map((a) => a.spiffeId)).toEqual(['spiffe://example.org/spire/agent/join_token/recent']);
    expect((await wisp(['agent', 'purge'])).stdout).toBe('No agents to purge.\n');
    expect((await wisp(['agent', 'purge', '-expiredFor', 'a month'])).stderr).toMatch(/--expiredFor "a month"/);
  });
});

describe('wisp bundle count', () => {
  it("counts the trust domain's own bundle and the federated ones, as SPIRE", async () => {
    expect((await wisp(['bundle', 'count'])).stdout).toBe('1 bundle\n');
    const pem = (await wisp(['bundle', 'show'])).stdout;
    const dir = mkdtempSync(join(tmpdir(), 'wisp-bundle-'));
    writeFileSync(join(dir, 'partner.pem'), pem);
    expect((await wisp(['bundle', 'set', '-id', 'partner.test', '-path', join(dir, 'partner.pem')])).code).toBe(0);
    expect((await wisp(['bundle', 'count'])).stdout).toBe('2 bundles\n');
    expect(JSON.parse((await wisp(['bundle', 'count', '-output', 'json'])).stdout)).toEqual({ count: 2, federated: 1 });
  });
});

describe('wisp validate (spire-server validate)', () => {
  const files = (toml: string, secrets?: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'wisp-validate-'));
    writeFileSync(join(dir, 'wrangler.toml'), `name = "wisp"\nmain = "src/worker/index.ts"\ncompatibility_date = "2026-04-20"\n${toml}`);
    if (secrets !== undefined) writeFileSync(join(dir, '.dev.vars'), secrets);
    return join(dir, 'wrangler.toml');
  };
  const secrets = `ADMIN_TOKEN=${'a'.repeat(40)}\nKEY_ENCRYPTION_SECRET=${'k'.repeat(40)}\n`;

  it("the repository's wrangler.toml is valid, with a warning for its placeholder database_id", async () => {
    const run = await wisp(['validate', '-wranglerConfig', 'wrangler.toml', '-secrets', files('', secrets).replace('wrangler.toml', '.dev.vars')]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Wisp issuer configuration is valid\.\nwarning: D1 binding DB has the placeholder database_id 0{8}-0{4}-0{4}-0{4}-0{12}: .*`wrangler d1 create wisp`.*\n$/);
    const real = files('[[d1_databases]]\nbinding = "DB"\ndatabase_name = "wisp"\ndatabase_id = "4f1c2d9e-7a3b-4c5d-8e9f-0a1b2c3d4e5f"\n[vars]\nTRUST_DOMAIN = "example.org"\nJWT_ISSUER = "https://wisp.example.org"\n', secrets);
    expect((await wisp(['validate', '-wranglerConfig', real, '-output', 'json'])).stdout).toBe(
      `${JSON.stringify({ valid: true, message: 'Wisp issuer configuration is valid.', warnings: [] }, null, 2)}\n`,
    );
    const noSecrets = await wisp(['validate', '-wranglerConfig', files('[vars]\nTRUST_DOMAIN = "example.org"\nJWT_ISSUER = "https://wisp.example.org"\n')]);
    expect(noSecrets.stdout).toMatch(/^Wisp issuer configuration is valid\. \(secrets not checked: no .+\.dev\.vars; pass --secrets <file>\)\n$/);
  }, 30_000);

  it.each([
    ['a bad var', '[vars]\nTRUST_DOMAIN = "Example_ORG"\nJWT_ISSUER = "https://wisp.example.org"\n', secrets, /TRUST_DOMAIN: /],
    ['http issuer', '[vars]\nTRUST_DOMAIN = "example.org"\nJWT_ISSUER = "http://wisp.example.org"\n', secrets, /JWT_ISSUER: /],
    ['a short secret in .dev.vars', '[vars]\nTRUST_DOMAIN = "example.org"\nJWT_ISSUER = "https://wisp.example.org"\n', `ADMIN_TOKEN=short\nKEY_ENCRYPTION_SECRET=${'k'.repeat(40)}\n`, /ADMIN_TOKEN: /],
    ['an env section', '[vars]\nTRUST_DOMAIN = "example.org"\nJWT_ISSUER = "https://wisp.example.org"\n[env.prod.vars]\nTRUST_DOMAIN = "prod.example.org"\nJWT_ISSUER = "https://wisp.example.org"\nCA_TTL = "5s"\n', undefined, /CA_TTL: /],
  ])('%s: one line, exit 1', async (name, toml, devVars, message) => {
    const run = await wisp(['validate', '-wranglerConfig', files(toml, devVars), ...(name === 'an env section' ? ['-env', 'prod'] : [])]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^Error: ERR_CONFIG_INVALID: Wisp issuer configuration is invalid: [^\n]+\n$/);
    expect(run.stderr).toMatch(message);
  }, 30_000);

  it('a missing wrangler.toml is a usage error', async () => {
    expect((await wisp(['validate', '-wranglerConfig', '/nonexistent/wrangler.toml'])).stderr).toBe('Error: ERR_USAGE: --wranglerConfig /nonexistent/wrangler.toml: no such file\n');
  });
});
