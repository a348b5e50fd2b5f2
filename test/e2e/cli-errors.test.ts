// Every way `wisp` can fail ends the same: exit 1 and one line on stderr (`Error: CODE: message`), never a
// stack trace. Wrong flags, bad SPIFFE IDs (checked before anything is sent), unreachable or misbehaving
// servers, bad or missing credentials, bad config. Also: --help of every command shows an example.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';
import { ONE_LINE_ERROR, runWisp, type WispRunOptions } from '../helpers/node/wisp-cli.js';

const TD = 'example.org';
const GOOD_ID = `spiffe://${TD}/web`;

let root: string;
let issuer: RunningIssuer;
let deadUrl: string;
let silentUrl: string;
let htmlUrl: string;
let silent: TcpServer;
let html: Server;
const sockets: Socket[] = [];

async function expectOneLineError(args: string[], code: string, options: WispRunOptions = {}, message?: RegExp) {
  const run = await runWisp(args, options);
  expect(run.code, `wisp ${args.join(' ')}\n${run.stdout}${run.stderr}`).toBe(1);
  expect(run.stderr).toMatch(ONE_LINE_ERROR);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stderr.startsWith(`Error: ${code}: `), run.stderr).toBe(true);
  if (message) expect(run.stderr).toMatch(message);
  expect(run.stdout).toBe('');
  return run;
}

const live = (extra: Record<string, string | undefined> = {}): WispRunOptions => ({
  env: { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken, ...extra },
});
/** a server that does not exist: a SPIFFE ID error proves the check happened before sending */
const offline = (): WispRunOptions => ({ env: { WISP_SERVER_URL: deadUrl, WISP_ADMIN_TOKEN: 'unused' } });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-cli-errors-'));
  deadUrl = `http://127.0.0.1:${await freePort()}`;
  silent = createTcpServer((s) => sockets.push(s)); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  html = createHttpServer((_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>'));
  await new Promise<void>((r) => html.listen(0, '127.0.0.1', r));
  htmlUrl = `http://127.0.0.1:${(html.address() as { port: number }).port}`;
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  silent?.close();
  html?.close();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('wrong flags', () => {
  it.each([
    [['entry', 'create', '--nope'], /unknown option '--nope'/],
    [['entry', 'create', '--spiffeID'], /argument missing/],
    [['entry', 'show', '--output', 'yaml'], /Allowed choices are pretty, json/],
    [['bundle', 'show', '--format', 'der'], /Allowed choices are pem, spiffe/],
    [['entry'], /missing subcommand: wisp entry create\|update\|delete\|show\|count/],
    [['entry', 'remove'], /unknown command 'remove'/],
    [['nope'], /unknown command 'nope'/],
    [[], /missing command/],
    [['entry', 'create', '--parentID', GOOD_ID, '--selector', 'unix:uid:1'], /--spiffeID is required/],
    [['entry', 'create', '--spiffeID', GOOD_ID, '--selector', 'unix:uid:1'], /--parentID is required if --node is not set/],
    [['entry', 'create', '--spiffeID', GOOD_ID, '--parentID', GOOD_ID], /--selector is required/],
    [['entry', 'create', '--node', '--spiffeID', GOOD_ID, '--selector', 'a:b', '--federatesWith', 'x.org'], /node entries can not federate/],
    [['entry', 'create', '--spiffeID', GOOD_ID, '--parentID', GOOD_ID, '--selector', 'a:b', '--x509SVIDTTL', 'soon'], /--x509SVIDTTL "soon"/],
    [['entry', 'update', '--spiffeID', GOOD_ID, '--parentID', GOOD_ID, '--selector', 'a:b'], /--entryID is required/],
    [['entry', 'show', '--selector', 'a:b', '--matchSelectorsOn', 'all'], /--matchSelectorsOn "all"/],
    [['entry', 'delete'], /--entryID or --file is required/],
    [['entry', 'create', '--data', '/nonexistent/entries.json'], /cannot read \/nonexistent\/entries\.json \(ENOENT\)/],
    [['jwt', 'mint', '--spiffeID', GOOD_ID], /--audience is required/],
    [['x509', 'mint'], /--spiffeID is required/],
    [['token', 'generate', '--ttl', '-5'], /--ttl/],
  ])('wisp %j', async (args, message) => {
    await expectOneLineError(args, 'ERR_USAGE', offline(), message);
  });

  it('a selector without a type is refused locally', async () => {
    await expectOneLineError(['entry', 'create', '--spiffeID', GOOD_ID, '--parentID', GOOD_ID, '--selector', 'uid1000'], 'ERR_SELECTOR_INVALID', offline());
  });
});

describe('a bad SPIFFE ID is refused before anything is sent', () => {
  it.each([
    [['entry', 'create', '--spiffeID', 'spiffe://example.org/a/../b', '--parentID', GOOD_ID, '--selector', 'unix:uid:1'], /--spiffeID "spiffe:\/\/example\.org\/a\/\.\.\/b": path must not contain dot segments/],
    [['entry', 'create', '--spiffeID', GOOD_ID, '--parentID', 'example.org/agent', '--selector', 'unix:uid:1'], /--parentID "example\.org\/agent": scheme is missing or invalid/],
    [['entry', 'show', '--spiffeID', 'spiffe://Example.org/web'], /trust domain characters/],
    [['entry', 'count', '--parentID', 'spiffe://example.org/'], /trailing slash/],
    [['agent', 'show', '--spiffeID', 'spiffe://example.org:8443/spire/agent/x'], /port/],
    [['agent', 'ban', '--spiffeID', 'not an id'], /--spiffeID/],
    [['jwt', 'mint', '--spiffeID', 'spiffe://example.org/web?x=1', '--audience', 'a'], /query/],
    [['x509', 'mint', '--spiffeID', 'SPIFFE://example.org/web'], /lowercase/],
    [['token', 'generate', '--spiffeID', 'spiffe://example.org/a%20b'], /percent-encoded/],
  ])('wisp %j', async (args, message) => {
    await expectOneLineError(args, 'ERR_SPIFFE_ID_INVALID', offline(), message);
  });
});

describe('the server', () => {
  it('unreachable: one line naming the server', async () => {
    const run = await expectOneLineError(['entry', 'count'], 'ERR_UNAVAILABLE', offline(), /cannot reach the issuer at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(run.stderr).toContain(deadUrl);
    await expectOneLineError(['healthcheck'], 'ERR_UNAVAILABLE', offline(), /server is unhealthy: cannot reach/);
  });

  it('silent: the request times out after --timeout seconds', async () => {
    const started = Date.now();
    await expectOneLineError(['--timeout', '1', 'entry', 'count'], 'ERR_UNAVAILABLE', { env: { WISP_SERVER_URL: silentUrl, WISP_ADMIN_TOKEN: 'x' } }, /did not answer within 1s/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('answering with something that is not the admin API: one line with the HTTP status', async () => {
    await expectOneLineError(['entry', 'count'], 'ERR_UNAVAILABLE', { env: { WISP_SERVER_URL: htmlUrl, WISP_ADMIN_TOKEN: 'x' } }, /HTTP 502/);
  });

  it("an issuer error: the issuer's code and message", async () => {
    await expectOneLineError(['entry', 'show', '--entryID', 'does-not-exist'], 'ERR_ENTRY_NOT_FOUND', live(), /no entry with this id/);
    await expectOneLineError(['token', 'generate', '--ttl', '99999999'], 'ERR_BAD_REQUEST', live(), /ttlSeconds/);
  });
});

describe('credentials and config', () => {
  it('a wrong admin token: one line, the issuer refuses', async () => {
    await expectOneLineError(['entry', 'count'], 'ERR_PERMISSION_DENIED', live({ WISP_ADMIN_TOKEN: 'wrong-token' }));
    await expectOneLineError(['--adminToken', 'wrong-token', 'agent', 'list'], 'ERR_PERMISSION_DENIED', live());
  });

  it('no credential at all: one line, nothing sent', async () => {
    await expectOneLineError(['entry', 'count'], 'ERR_UNAUTHENTICATED', { env: { WISP_SERVER_URL: deadUrl } }, /--adminToken.*WISP_ADMIN_TOKEN.*--useWorkloadAPI/);
  });

  it('no server URL, or http to a non-loopback host', async () => {
    await expectOneLineError(['entry', 'count'], 'ERR_CONFIG_INVALID', { env: { WISP_ADMIN_TOKEN: 'x' } }, /serverURL: is required/);
    await expectOneLineError(['--serverURL', 'http://wisp.example.org', 'entry', 'count'], 'ERR_CONFIG_INVALID', { env: { WISP_ADMIN_TOKEN: 'x' } }, /from flag --serverURL/);
  });

  it('a config file (WISP_CONFIG or --config) supplies the connection; env and flags override it', async () => {
    const file = join(root, 'wisp.json');
    writeFileSync(file, JSON.stringify({ serverURL: issuer.url, adminToken: issuer.adminToken, timeout: 20 }));
    const viaEnv = await runWisp(['entry', 'count'], { env: { WISP_CONFIG: file } });
    expect(viaEnv.stderr).toBe('');
    expect(viaEnv.stdout).toBe('0 registration entries\n');
    expect((await runWisp(['--config', file, 'entry', 'count'])).code).toBe(0);
    await expectOneLineError(['--config', file, 'entry', 'count'], 'ERR_PERMISSION_DENIED', { env: { WISP_ADMIN_TOKEN: 'wrong' } });
    await expectOneLineError(['--config', file, '--serverURL', deadUrl, 'entry', 'count'], 'ERR_UNAVAILABLE');
  });

  it('a broken config file: one line naming the file and key', async () => {
    const file = join(root, 'broken.json');
    writeFileSync(file, JSON.stringify({ serverUrl: issuer.url }));
    await expectOneLineError(['--config', file, 'entry', 'count'], 'ERR_CONFIG_INVALID', {}, /serverUrl \(from file .*broken\.json\): unknown key/);
    writeFileSync(file, '{');
    await expectOneLineError(['--config', file, 'entry', 'count'], 'ERR_CONFIG_INVALID', {}, /not valid JSON/);
  });
});

describe('--help', () => {
  const commands = [
    [], ['entry'], ['entry', 'create'], ['entry', 'update'], ['entry', 'delete'], ['entry', 'show'], ['entry', 'count'],
    ['token'], ['token', 'generate'], ['agent'], ['agent', 'list'], ['agent', 'show'], ['agent', 'count'], ['agent', 'ban'], ['agent', 'evict'],
    ['bundle'], ['bundle', 'show'], ['jwt'], ['jwt', 'mint'], ['x509'], ['x509', 'mint'], ['healthcheck'],
  ];

  it.each(commands.map((c) => [c.join(' ') || '(root)', c]))('wisp %s --help shows an example, exit 0', async (_name, command) => {
    const run = await runWisp([...(command as string[]), '--help']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^Usage: wisp/);
    expect(run.stdout).toMatch(/\nExamples?:\n {2}\$ (WISP_[A-Z_]+=\S+ )*wisp /);
  });

  it('leaf commands list --output pretty|json and the connection flags', async () => {
    const run = await runWisp(['entry', 'show', '--help']);
    expect(run.stdout).toContain('--output <format>');
    expect(run.stdout).toContain('--serverURL <url>');
    expect(run.stdout).toContain('--adminToken <token>');
    expect(run.stdout).toContain('--useWorkloadAPI');
  });
});
