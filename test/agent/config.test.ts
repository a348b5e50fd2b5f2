import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig, readAgentConfigFile, socketPathFromEndpoint } from '../../src/agent/config.js';

const file = (content: unknown) => ({ path: '/etc/wisp/agent.json', content });
const base = { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' };

describe('parseAgentConfig', () => {
  it('applies defaults to a minimal file', () => {
    const c = parseAgentConfig(file(base), {}, {});
    expect(c).toEqual({
      serverUrl: 'https://wisp.example.com',
      trustDomain: 'example.org',
      dataDir: '/var/lib/wisp-agent',
      socketPath: '/run/wisp-agent/api.sock',
      logLevel: 'info',
      syncIntervalSeconds: 5,
      requestTimeoutSeconds: 10,
    });
  });

  it('lets the environment override the file and flags override both', () => {
    const f = file({ ...base, dataDir: '/from/file', logLevel: 'warn', socketPath: '/file.sock' });
    const env = { WISP_DATA_DIR: '/from/env', WISP_LOG_LEVEL: 'debug', SPIFFE_ENDPOINT_SOCKET: 'unix:///env/api.sock', WISP_SYNC_INTERVAL_SECONDS: '7' };
    const c = parseAgentConfig(f, env, { dataDir: '/from/flag', joinToken: 'tok' });
    expect(c.dataDir).toBe('/from/flag');
    expect(c.logLevel).toBe('debug');
    expect(c.socketPath).toBe('/env/api.sock');
    expect(c.syncIntervalSeconds).toBe(7);
    expect(c.joinToken).toBe('tok');
  });

  it('prefers WISP_SOCKET_PATH over SPIFFE_ENDPOINT_SOCKET, and a flag over both', () => {
    const env = { SPIFFE_ENDPOINT_SOCKET: 'unix:///a.sock', WISP_SOCKET_PATH: '/b.sock' };
    expect(parseAgentConfig(file(base), env, {}).socketPath).toBe('/b.sock');
    expect(parseAgentConfig(file(base), env, { socketPath: 'unix:///c.sock' }).socketPath).toBe('/c.sock');
  });

  it('works from environment and flags alone', () => {
    const c = parseAgentConfig(undefined, { WISP_SERVER_URL: 'https://x.example', WISP_TRUST_DOMAIN: 'td.example' }, {});
    expect(c.serverUrl).toBe('https://x.example');
  });

  it('refuses unknown keys in the file, naming key and file', () => {
    expect(() => parseAgentConfig(file({ ...base, serverURL: 'https://x' }), {}, {})).toThrow(/^serverURL \(from file \/etc\/wisp\/agent.json\): unknown key/);
  });

  it('refuses http for non-loopback hosts and names the winning source', () => {
    expect(() => parseAgentConfig(file(base), { WISP_SERVER_URL: 'http://wisp.example.com' }, {})).toThrow(
      'serverUrl (from env WISP_SERVER_URL): http is allowed only for loopback hosts (got wisp.example.com); use https',
    );
    expect(() => parseAgentConfig(file(base), {}, { serverUrl: 'ftp://x' })).toThrow(/^serverUrl \(from flag --serverURL\): scheme must be https/);
  });

  it('accepts http for loopback hosts', () => {
    for (const u of ['http://127.0.0.1:8787', 'http://localhost:8787', 'http://[::1]:8787']) {
      expect(parseAgentConfig(file({ ...base, serverUrl: u }), {}, {}).serverUrl).toBe(u);
    }
  });

  it('uses the one loopback rule: 127.0.0.0/8 yes, *.localhost no (src/shared/net/loopback.ts)', () => {
    expect(parseAgentConfig(file({ ...base, serverUrl: 'http://127.0.0.2:8787' }), {}, {}).serverUrl).toBe('http://127.0.0.2:8787');
    expect(() => parseAgentConfig(file({ ...base, serverUrl: 'http://wisp.localhost:8787' }), {}, {})).toThrow(/http is allowed only for loopback hosts \(got wisp.localhost\)/);
  });

  it('reports missing required keys with where to set them', () => {
    expect(() => parseAgentConfig(file({ serverUrl: base.serverUrl }), {}, {})).toThrow(/^trustDomain: is required \(config file, env WISP_TRUST_DOMAIN or flag --trustDomain\)/);
  });

  it('validates types and ranges with one-line messages', () => {
    expect(() => parseAgentConfig(file({ ...base, syncIntervalSeconds: 0 }), {}, {})).toThrow(/^syncIntervalSeconds \(from file .*\): must be between 1 and 3600$/);
    expect(() => parseAgentConfig(file(base), { WISP_SYNC_INTERVAL_SECONDS: 'soon' }, {})).toThrow(/^syncIntervalSeconds \(from env WISP_SYNC_INTERVAL_SECONDS\)/);
    expect(() => parseAgentConfig(file(base), {}, { logLevel: 'loud' })).toThrow(/^logLevel \(from flag --logLevel\): must be one of/);
    expect(() => parseAgentConfig(file({ ...base, trustDomain: 'Example.org' }), {}, {})).toThrow(/^trustDomain \(from file .*\): trust domain characters/);
    expect(() => parseAgentConfig(file({ ...base, socketPath: 'relative.sock' }), {}, {})).toThrow(/^socketPath .*absolute path/);
    expect(() => parseAgentConfig(file([]), {}, {})).toThrow(/must be a JSON object/);
  });

  it('reads a JSON file and reports unreadable or invalid ones in one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wisp-cfg-'));
    const p = join(dir, 'agent.json');
    writeFileSync(p, JSON.stringify(base));
    expect(parseAgentConfig(readAgentConfigFile(p), {}, {}).trustDomain).toBe('example.org');
    writeFileSync(p, '{ nope');
    expect(() => readAgentConfigFile(p)).toThrow(/^config file .*: not valid JSON/);
    expect(() => readAgentConfigFile(join(dir, 'missing.json'))).toThrow(/cannot read \(ENOENT\)/);
  });

  it('turns unix:// endpoints into paths', () => {
    expect(socketPathFromEndpoint('unix:///run/x.sock')).toBe('/run/x.sock');
    expect(socketPathFromEndpoint('/run/x.sock')).toBe('/run/x.sock');
  });
});
