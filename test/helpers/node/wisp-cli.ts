/**
 * Runs the `wisp` admin CLI (bin/wisp.js) as a child process, as an operator would, for the e2e tests; or
 * in process against the in-process issuer.
 * @module
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../scripts/local-stack.js';
import { runCli } from '../../../src/cli/main.js';
import { parseWorkerConfig, type WorkerConfigEnv } from '../../../src/worker/config.js';

export const WISP_BIN = join(REPO_ROOT, 'bin', 'wisp.js');

export interface WispRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface WispRunOptions {
  /** extra environment; WISP_* and SPIFFE_ENDPOINT_SOCKET of this process are not inherited */
  env?: Record<string, string | undefined>;
  /** written to stdin */
  input?: string;
  /** run under a pseudo-terminal (util-linux `script`); stdout and stderr then arrive together in stdout */
  tty?: boolean;
  timeoutMs?: number;
}

function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WISP_') && k !== 'SPIFFE_ENDPOINT_SOCKET') env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function runWisp(args: string[], options: WispRunOptions = {}): Promise<WispRun> {
  const argv = [process.execPath, WISP_BIN, ...args];
  const [cmd, cmdArgs] = options.tty
    ? ['script', ['-qefc', argv.map(shellQuote).join(' '), '/dev/null']]
    : [argv[0]!, argv.slice(1)];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { cwd: REPO_ROOT, env: cleanEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

/** The contract for every failure: exit 1 and exactly one line on stderr, `Error: ERR_…: message`, no stack. */
export const ONE_LINE_ERROR = /^Error: ERR_[A-Z_]+: [^\n]+\n$/;

/**
 * Runs `wisp` in this process (runCli, the same code bin/wisp.js runs) against `issuer` with its admin
 * token: for tests against the in-process issuer, where a child process would cost a second per call.
 */
export async function runWispInProcess(args: string[], issuer: { url: string; adminToken: string }): Promise<WispRun> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (t: string) => void (stdout += t),
    stderr: (t: string) => void (stderr += t),
    stderrIsTty: false,
    env: { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken },
    readStdin: async () => '',
  };
  // the issuer's parser for `wisp validate`, as bin/wisp.js hands it in
  const issuerConfigCheck = async (env: Record<string, unknown>) => void parseWorkerConfig(env as WorkerConfigEnv);
  const code = await runCli(args, { io, workloadApiToken: async () => Promise.reject(new Error('unused')), issuerConfigCheck });
  return { code, stdout, stderr };
}
