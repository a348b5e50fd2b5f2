/**
 * `wisp`, the admin CLI: SPIRE-server nouns and flags over the issuer's admin API. Builds the commander
 * program, runs it, and turns every failure into one line on stderr and exit code 1.
 * @module
 */
import { Command, CommanderError } from 'commander';
import { registerAgentCommands } from './agent.js';
import { registerAuditCommands } from './audit.js';
import { registerBundleCommands } from './bundle.js';
import { createLeafBuilder } from './command.js';
import { CliUsageError, formatErrorLine, type CliIo, type WorkloadApiTokenSource } from './context.js';
import { registerEntryCommands } from './entry.js';
import { registerExchangeCommand } from './exchange.js';
import { registerFederationCommands } from './federation.js';
import { normalizeSpireArgs } from './flags.js';
import { registerHealthcheckCommand } from './healthcheck.js';
import { registerJwtCommands } from './jwt.js';
import { registerLocalAuthorityCommands } from './localauthority.js';
import { registerTokenCommands } from './token.js';
import { registerValidateCommand, type IssuerConfigCheck } from './validate.js';
import { registerWitCommands } from './wit.js';
import { registerX509Commands } from './x509.js';

export interface CliDeps {
  io: CliIo;
  /** fetches an admin JWT-SVID for --useWorkloadAPI */
  workloadApiToken: WorkloadApiTokenSource;
  /** the issuer's config parser for `wisp validate`, given by the launcher (src/cli imports no src/worker) */
  issuerConfigCheck?: IssuerConfigCheck;
}

export function buildProgram(deps: CliDeps): Command {
  const program = new Command('wisp')
    .description('Admin CLI for a Wisp trust domain: registration entries, join tokens, agents, bundles, federation and SVIDs (spire-server style).')
    .option('--serverURL <url>', 'issuer base URL (env WISP_SERVER_URL)')
    .option('--adminToken <token>', 'admin bearer token (env WISP_ADMIN_TOKEN)')
    .option('--useWorkloadAPI', 'authenticate with an admin JWT-SVID from the local Workload API')
    .option('--socketPath <path>', 'Workload API socket for --useWorkloadAPI (env SPIFFE_ENDPOINT_SOCKET)')
    .option('--adminAudience <aud>', 'audience of the admin JWT-SVID (default: the server URL; env WISP_ADMIN_AUDIENCE)')
    .option('--timeout <seconds>', 'timeout of each request to the issuer (default 30; env WISP_TIMEOUT_SECONDS)')
    .option('--config <file>', 'JSON config file with any of the keys above (env WISP_CONFIG)')
    .addHelpText('after', '\nExample:\n  $ WISP_SERVER_URL=https://wisp.example.org WISP_ADMIN_TOKEN=... wisp entry show --spiffeID spiffe://example.org/web\n')
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => deps.io.stdout(s),
      // commander's own error text is replaced by our one line (see runCli)
      writeErr: () => undefined,
      outputError: () => undefined,
    });
  program.allowExcessArguments().action((_opts: unknown, cmd: Command) => {
    const names = 'entry|token|agent|bundle|federation|jwt|wit|x509|localauthority|audit|healthcheck|validate|exchange';
    const sub = cmd.args[0];
    throw new CliUsageError(`${sub === undefined ? 'missing command' : `unknown command '${sub}'`}: wisp ${names} (see wisp --help)`);
  });
  const leaf = createLeafBuilder(deps.io, deps.workloadApiToken);
  registerEntryCommands(program, leaf);
  registerTokenCommands(program, leaf);
  registerAgentCommands(program, leaf);
  registerBundleCommands(program, leaf);
  registerFederationCommands(program, leaf);
  registerJwtCommands(program, leaf);
  registerWitCommands(program, leaf);
  registerX509Commands(program, leaf);
  registerAuditCommands(program, leaf);
  registerLocalAuthorityCommands(program, leaf);
  registerHealthcheckCommand(program, leaf);
  registerValidateCommand(program, leaf, deps.issuerConfigCheck);
  registerExchangeCommand(program, leaf);
  return program;
}

/**
 * Runs `wisp` with `args` (without node and script) and returns the exit code; never throws.
 * @example process.exitCode = await runCli(process.argv.slice(2), deps)
 */
export async function runCli(args: readonly string[], deps: CliDeps): Promise<number> {
  const program = buildProgram(deps);
  try {
    await program.parseAsync(normalizeSpireArgs(args), { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0; // --help, --version
      const message = e.message.replace(/^error:\s*/i, '');
      deps.io.stderr(`${formatErrorLine(new CliUsageError(message))}\n`);
      return 1;
    }
    deps.io.stderr(`${formatErrorLine(e)}\n`);
    return 1;
  }
}

/** Fetches an admin JWT-SVID (audience: the issuer URL unless --adminAudience) from the local Workload API. */
const workloadApiToken: WorkloadApiTokenSource = async (config, env) => {
  // the one import outside src/shared: the agent's Workload API client (grpc-js), loaded only when asked for
  const { resolveEndpointAddress } = await import('../node/workload-api/client.js');
  const { fetchAdminJwtSvid } = await import('../node/workload-api/admin-jwt.js');
  return fetchAdminJwtSvid(resolveEndpointAddress(config.socketPath, env), config.adminAudience ?? config.serverUrl, config.timeoutSeconds * 1000);
};

/** Runs `wisp` in this process: real stdio and environment. Used by bin/wisp.js, which also hands in the issuer's config parser. */
export async function main(args: readonly string[] = process.argv.slice(2), issuerConfigCheck?: IssuerConfigCheck): Promise<number> {
  // a closed pipe (`wisp entry show | head`) ends the output quietly, as other CLIs do
  const onPipeError = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  };
  process.stdout.on('error', onPipeError);
  process.stderr.on('error', onPipeError);
  const io: CliIo = {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    stderrIsTty: process.stderr.isTTY === true,
    env: process.env,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
  return runCli(args, { io, workloadApiToken, ...(issuerConfigCheck ? { issuerConfigCheck } : {}) });
}
