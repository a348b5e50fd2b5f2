import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/agent/main.js';

afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

function captureStderr(): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  return lines;
}

describe('wisp-agent CLI', () => {
  it('run: a config error is one line on stderr and exit 1', async () => {
    const err = captureStderr();
    const code = await main(['node', 'wisp-agent', 'run', '--serverURL', 'http://wisp.example.com', '--trustDomain', 'example.org']);
    expect(code).toBe(1);
    expect(err).toEqual(['wisp-agent: serverUrl (from flag --serverURL): http is allowed only for loopback hosts (got wisp.example.com); use https\n']);
  });

  it('run: a missing config file is one line', async () => {
    const err = captureStderr();
    expect(await main(['node', 'wisp-agent', 'run', '--config', '/nonexistent/agent.json'])).toBe(1);
    expect(err.join('')).toMatch(/^wisp-agent: config file \/nonexistent\/agent.json: cannot read \(ENOENT\)\n$/);
  });

  it('healthcheck: exit 1 when nothing listens on the socket', async () => {
    const err = captureStderr();
    const socket = join(mkdtempSync(join(tmpdir(), 'wisp-cli-')), 'none.sock');
    expect(await main(['node', 'wisp-agent', 'healthcheck', '--socketPath', socket])).toBe(1);
    expect(err.join('')).toMatch(/^unhealthy: /);
  });

  it('api fetch x509: a connection failure is one line and exit 1', async () => {
    const err = captureStderr();
    const socket = join(mkdtempSync(join(tmpdir(), 'wisp-cli-')), 'none.sock');
    expect(await main(['node', 'wisp-agent', 'api', 'fetch', 'x509', '--socketPath', socket, '--timeout', '2'])).toBe(1);
    expect(err.length).toBe(1);
    expect(err[0]).toMatch(/^wisp-agent: Workload API: .+\n$/);
  });
});
