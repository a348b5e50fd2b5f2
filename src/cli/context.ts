/**
 * What every `wisp` command gets: its I/O (injected, so tests can run commands in-process), the output
 * format, the admin client built from the merged connection config, and the one-line error shape.
 * @module
 */
import { readFileSync } from 'node:fs';
import { WispError, type WispErrorCode } from '../shared/errors.js';
import { createAdminClient, type AdminClient } from '../node/admin-client.js';
import { readConfigFile } from '../node/config-sources.js';
import { parseCliConfig, type CliConfig, type CliConfigInput } from './config.js';

export type OutputFormat = 'pretty' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['pretty', 'json'];

/** The codes a CLI failure can carry: the issuer's, plus ERR_USAGE for wrong flags. */
export type CliErrorCode = WispErrorCode | 'ERR_USAGE';

/** Wrong or missing flags, caught before anything is sent. */
export class CliUsageError extends Error {
  readonly code = 'ERR_USAGE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** true when stderr is a terminal: progress indicators are drawn only then */
  stderrIsTty: boolean;
  env: Readonly<Record<string, string | undefined>>;
  readStdin(): Promise<string>;
}

/** Connection flags as commander hands them over (global options). */
export interface GlobalFlags {
  serverURL?: string;
  adminToken?: string;
  useWorkloadAPI?: boolean;
  socketPath?: string;
  adminAudience?: string;
  timeout?: string;
  config?: string;
}

export interface CommandContext {
  io: CliIo;
  output: OutputFormat;
  /** the merged connection config (throws a one-line error when it is incomplete or wrong) */
  config(): CliConfig;
  client(): AdminClient;
  /** prints a JSON value on stdout */
  printJson(value: unknown): void;
  /** prints lines on stdout */
  print(...lines: string[]): void;
  /** reads a file, or stdin for `-` */
  readInput(path: string): Promise<string>;
}

/** Fetches an admin JWT-SVID from the Workload API; provided by main.ts so the rest stays transport-free. */
export type WorkloadApiTokenSource = (config: CliConfig, env: CliIo['env']) => Promise<string>;

/** One line, never a stack trace: `Error: CODE: message`. */
export function formatErrorLine(error: unknown): string {
  let code: string;
  let message: string;
  if (error instanceof WispError || error instanceof CliUsageError) {
    code = error.code;
    message = error.message;
  } else {
    code = 'ERR_INTERNAL';
    message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
  return `Error: ${code}: ${message.replace(/\s*\n\s*/g, ' ').trim()}`;
}

export function createCommandContext(io: CliIo, globals: GlobalFlags, output: OutputFormat, workloadApiToken: WorkloadApiTokenSource): CommandContext {
  let config: CliConfig | undefined;
  let client: AdminClient | undefined;
  const getConfig = (): CliConfig => {
    if (config) return config;
    const configPath = globals.config ?? io.env['WISP_CONFIG'];
    const file = configPath ? readConfigFile(configPath) : undefined;
    const flags: CliConfigInput = {
      serverURL: globals.serverURL,
      adminToken: globals.adminToken,
      useWorkloadAPI: globals.useWorkloadAPI,
      socketPath: globals.socketPath,
      adminAudience: globals.adminAudience,
      timeout: globals.timeout,
    };
    config = parseCliConfig(file, io.env, flags);
    return config;
  };
  const credential = async (): Promise<string> => {
    const c = getConfig();
    if (c.useWorkloadApi) return workloadApiToken(c, io.env);
    if (!c.adminToken) {
      throw new WispError('ERR_UNAUTHENTICATED', 'no admin credential: pass --adminToken, set WISP_ADMIN_TOKEN, or use --useWorkloadAPI');
    }
    return c.adminToken;
  };
  let cachedToken: Promise<string> | undefined;
  return {
    io,
    output,
    config: getConfig,
    client() {
      if (client) return client;
      const c = getConfig();
      client = createAdminClient({
        serverUrl: c.serverUrl,
        credential: () => (cachedToken ??= credential()),
        timeoutMs: c.timeoutSeconds * 1000,
      });
      return client;
    },
    printJson(value) {
      io.stdout(`${JSON.stringify(value, null, 2)}\n`);
    },
    print(...lines) {
      io.stdout(lines.map((l) => `${l}\n`).join(''));
    },
    async readInput(path) {
      if (path === '-') return io.readStdin();
      try {
        return readFileSync(path, 'utf8');
      } catch (e) {
        throw new CliUsageError(`cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    },
  };
}
