import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fastRunFlags, main } from '../../src/agent/main.js';
import { withRunOptions } from '../../src/agent/cli/validate.js';
import { normalizeGoFlags } from '../../src/node/go-flags.js';

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

  it("run: SPIRE's single-dash spelling (-config, -serverURL) is the same flag as --config", async () => {
    const err = captureStderr();
    expect(await main(['node', 'wisp-agent', 'run', '-config', '/nonexistent/agent.json'])).toBe(1);
    expect(await main(['node', 'wisp-agent', 'run', '-serverURL=http://wisp.example.com', '-trustDomain', 'example.org'])).toBe(1);
    expect(err).toEqual([
      'wisp-agent: config file /nonexistent/agent.json: cannot read (ENOENT)\n',
      'wisp-agent: serverUrl (from flag --serverURL): http is allowed only for loopback hosts (got wisp.example.com); use https\n',
    ]);
  });

  it('healthcheck and api take -socketPath as well', async () => {
    const err = captureStderr();
    const socket = join(mkdtempSync(join(tmpdir(), 'wisp-cli-')), 'none.sock');
    expect(await main(['node', 'wisp-agent', 'healthcheck', '-socketPath', socket])).toBe(1);
    expect(await main(['node', 'wisp-agent', 'api', 'fetch', 'x509', '-socketPath', socket, '-timeout', '2', '-output', 'json'])).toBe(1);
    expect(err[0]).toMatch(/^unhealthy: /);
    expect(err[1]).toMatch(/^wisp-agent: Workload API: .+\n$/);
  });

  describe('validate (spire-agent validate)', () => {
    const configFile = (json: unknown) => {
      const dir = mkdtempSync(join(tmpdir(), 'wisp-validate-'));
      const file = join(dir, 'agent.json');
      writeFileSync(file, JSON.stringify(json));
      return file;
    };

    it('a valid config file: the line on stdout, exit 0', async () => {
      const out: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
      const file = configFile({ serverUrl: 'https://wisp.example.com', trustDomain: 'example.org', dataDir: '/var/lib/wisp-agent' });
      expect(await main(['node', 'wisp-agent', 'validate', '-config', file])).toBe(0);
      expect(out).toEqual(['Wisp agent configuration file is valid.\n']);
    });

    it.each([
      ['a bad value in the file', { serverUrl: 'https://wisp.example.com', trustDomain: 'Example.ORG!' }, [], /^Wisp agent configuration file is invalid: trustDomain \(from file .+\): /],
      ['a flag overriding the file', { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' }, ['-logLevel', 'loud'], /^Wisp agent configuration file is invalid: logLevel \(from flag --logLevel\): must be one of /],
      ['an unknown key', { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org', sockPath: '/x' }, [], /^Wisp agent configuration file is invalid: .*sockPath/],
    ])('%s: one line on stderr, exit 1', async (_name, json, extra, message) => {
      const err = captureStderr();
      expect(await main(['node', 'wisp-agent', 'validate', '-config', configFile(json), ...extra])).toBe(1);
      expect(err.length).toBe(1);
      expect(err[0]).toMatch(message);
      expect(err[0]!.endsWith('\n') && !err[0]!.slice(0, -1).includes('\n')).toBe(true);
    });

    it('a missing file is invalid', async () => {
      const err = captureStderr();
      expect(await main(['node', 'wisp-agent', 'validate', '--config', '/nonexistent/agent.json'])).toBe(1);
      expect(err).toEqual(['Wisp agent configuration file is invalid: config file /nonexistent/agent.json: cannot read (ENOENT)\n']);
    });
  });
});

describe('wisp-agent run fast path (no commander)', () => {
  /** what commander gives run's action for `args` (the same options as the real command) */
  async function commanderFlags(args: string[]): Promise<Record<string, unknown>> {
    const { Command } = await import('commander');
    let got: Record<string, unknown> = {};
    const program = new Command('t').exitOverride();
    withRunOptions(program.command('run')).action((opts: Record<string, unknown>) => void (got = { ...opts }));
    await program.parseAsync(args, { from: 'user' });
    return got;
  }

  it('takes known --name value pairs exactly as commander does', async () => {
    for (const argv of [['run'], ['run', '--config', '/etc/wisp/agent.json'], ['run', '-config', 'a.json', '-logLevel', 'debug', '-socketPath', '/tmp/s.sock']]) {
      const args = normalizeGoFlags(argv);
      const fast = fastRunFlags(args);
      expect(fast).toBeDefined();
      expect(fast).toEqual(await commanderFlags(args));
    }
  });

  it('leaves anything else to commander', () => {
    for (const argv of [['run', '--help'], ['run', '--config'], ['run', '--config=a.json'], ['run', '--bogus', 'x'], ['run', '--config', 'a', '--config', 'b'], ['run', '--config', '-x'], ['validate', '--config', 'a'], ['run', 'extra', 'x']]) {
      expect(fastRunFlags(normalizeGoFlags(argv))).toBeUndefined();
    }
  });
});
