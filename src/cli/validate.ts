/**
 * `wisp validate`: SPIRE's `spire-server validate` for the issuer. Reads the Worker's vars from
 * wrangler.toml (through wrangler's own reader, so `[env.<name>]` sections resolve as at deploy) and its
 * secrets from a dotenv file (.dev.vars), and runs them through the issuer's config parser. The parser is
 * handed in by the launcher (bin/wisp.js), since src/cli imports nothing of src/worker (docs/architecture.md).
 * It also warns about what is valid locally but cannot deploy: the all-zero D1 `database_id` placeholder.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseEnv } from 'node:util';
import { WispError } from '../shared/errors.js';
import type { LeafBuilder } from './command.js';
import { CliUsageError } from './context.js';
import type { Command } from 'commander';

/** The issuer's config parser (parseWorkerConfig): throws the one-line config error naming the key. */
export type IssuerConfigCheck = (env: Record<string, unknown>) => Promise<void>;

/** The secrets parseWorkerConfig requires; stood in for when no secrets file is given (they live in Cloudflare). */
const REQUIRED_SECRETS = ['ADMIN_TOKEN', 'KEY_ENCRYPTION_SECRET'] as const;
const SECRET_STAND_IN = 'stand-in-for-a-secret-not-checked-here-0000';

export const ISSUER_CONFIG_VALID = 'Wisp issuer configuration is valid.';

/** wrangler.toml's placeholder id, until `wrangler d1 create wisp` gives the real one. */
export const PLACEHOLDER_DATABASE_ID = '00000000-0000-0000-0000-000000000000';

interface WranglerConfig {
  vars?: Record<string, unknown>;
  d1_databases?: { binding?: string; database_id?: string }[];
}

/** The Worker's config as wrangler resolves it (top level, or `[env.<name>]`). */
async function readWranglerConfig(file: string, env: string | undefined): Promise<WranglerConfig> {
  if (!existsSync(file)) throw new CliUsageError(`--wranglerConfig ${file}: no such file`);
  let wrangler: { unstable_readConfig(args: { config: string; env?: string }): WranglerConfig };
  try {
    wrangler = (await import('wrangler')) as unknown as typeof wrangler;
  } catch {
    throw new CliUsageError('wisp validate reads wrangler.toml with wrangler: run it in the repository after npm ci');
  }
  try {
    return wrangler.unstable_readConfig({ config: file, ...(env ? { env } : {}) });
  } catch (e) {
    throw new WispError('ERR_CONFIG_INVALID', `${file}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Secrets from a dotenv file (`KEY=value` lines, as .dev.vars). */
function readSecrets(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliUsageError(`--secrets ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseEnv(text) as Record<string, string>;
}

interface ValidateFlags {
  wranglerConfig?: string;
  env?: string;
  secrets?: string;
}

/** What deploys would trip over although the config parses: D1 bindings still on the placeholder id. */
function deployWarnings(config: WranglerConfig): string[] {
  return (config.d1_databases ?? [])
    .filter((d) => d.database_id === PLACEHOLDER_DATABASE_ID)
    .map((d) => `warning: D1 binding ${d.binding ?? '?'} has the placeholder database_id ${PLACEHOLDER_DATABASE_ID}: fine for wrangler dev; before wrangler deploy run \`wrangler d1 create wisp\` and put the printed database_id in wrangler.toml (docs/deploy.md)`);
}

/**
 * What `validate` checks and prints: the valid line, noting when secrets were not checked, then any
 * deploy warnings; throws the one-line reason (ERR_CONFIG_INVALID) otherwise.
 */
export async function validateIssuerConfig(flags: ValidateFlags, check: IssuerConfigCheck): Promise<{ message: string; warnings: string[] }> {
  const wranglerFile = flags.wranglerConfig ?? 'wrangler.toml';
  const config = await readWranglerConfig(wranglerFile, flags.env);
  const vars = { ...(config.vars ?? {}) };
  const besideWrangler = join(dirname(wranglerFile), flags.env ? `.dev.vars.${flags.env}` : '.dev.vars');
  const secretsFile = flags.secrets ?? (existsSync(besideWrangler) ? besideWrangler : undefined);
  const secrets = secretsFile ? readSecrets(secretsFile) : Object.fromEntries(REQUIRED_SECRETS.map((k) => [k, SECRET_STAND_IN]));
  try {
    await check({ ...vars, ...secrets });
  } catch (e) {
    if (e instanceof WispError) throw new WispError('ERR_CONFIG_INVALID', `Wisp issuer configuration is invalid: ${e.message}`);
    throw e;
  }
  const message = secretsFile ? ISSUER_CONFIG_VALID : `${ISSUER_CONFIG_VALID} (secrets not checked: no ${besideWrangler}; pass --secrets <file>)`;
  return { message, warnings: deployWarnings(config) };
}

export function registerValidateCommand(program: Command, leaf: LeafBuilder, check: IssuerConfigCheck | undefined): void {
  const validate = leaf(program, 'validate', "Validates the issuer's configuration (wrangler.toml vars and secrets) with the issuer's own parser, as spire-server validate", [
    'wisp validate',
    'wisp validate --wranglerConfig deploy/wrangler.toml --env production --secrets prod.vars',
  ]);
  validate.command
    .option('--wranglerConfig <file>', 'the Worker\'s wrangler.toml (default ./wrangler.toml)')
    .option('--env <name>', 'a wrangler environment ([env.<name>] in wrangler.toml)')
    .option('--secrets <file>', 'dotenv file with the secrets (default .dev.vars beside wrangler.toml, if there)');
  validate.action(async (ctx, opts) => {
    if (!check) throw new CliUsageError('wisp validate checks the issuer with its own sources: run it in a checkout of the repository (npm ci), not from the npm package');
    const { message, warnings } = await validateIssuerConfig(opts as ValidateFlags, check);
    if (ctx.output === 'json') return ctx.printJson({ valid: true, message, warnings });
    ctx.print(message, ...warnings);
  });
}
