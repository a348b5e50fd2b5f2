#!/usr/bin/env node
// Launcher for `wisp`, the admin CLI: in a checkout it runs the TypeScript sources through tsx (as the rest of
// the repo does); the npm package ships no src/ and runs its prebuilt bundle dist/cli/cli.cjs
// (scripts/build-agent.mjs buildPackageBundles, run by `prepack`).
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const cliBundle = fileURLToPath(new URL('../dist/cli/cli.cjs', import.meta.url));
let main;
// `wisp validate` checks the issuer's config with the issuer's own parser; src/cli may not import src/worker,
// so the launcher hands it in (loaded only when called). The package has no issuer sources: validate says so.
let issuerConfigCheck;
if (!existsSync(fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))) && existsSync(cliBundle)) {
  const { loadAgentBundle } = await import('../scripts/build-agent.mjs');
  ({ main } = loadAgentBundle(cliBundle));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
  issuerConfigCheck = async (env) => void (await import('../src/worker/config.ts')).parseWorkerConfig(env);
}
const code = await main(process.argv.slice(2), issuerConfigCheck);
// let stdout drain (large JSON dumps into a pipe) before exiting
process.exitCode = code;
