#!/usr/bin/env node
// Launcher for `wisp`, the admin CLI: the bundle dist/cli/cli.cjs when it is fresh (always in the npm package;
// in a checkout once `npm run build:agent` or postinstall built it), else the sources through tsx
// (scripts/build-agent.mjs, loadCommand). V8's compile cache makes the bundle's later starts cheaper.
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';
import { enableCompileCache, loadCommand, registerTsx } from '../scripts/build-agent.mjs';

enableCompileCache();
const main = await loadCommand('cli');
// `wisp validate` checks the issuer's config with the issuer's own parser; src/cli may not import src/worker,
// so the launcher hands it in (loaded only when called, through tsx). The package has no issuer sources:
// validate says so.
const issuerConfig = new URL('../src/worker/config.ts', import.meta.url);
const issuerConfigCheck = existsSync(fileURLToPath(issuerConfig))
  ? async (env) => {
      await registerTsx();
      await import('reflect-metadata'); // the issuer's modules use @peculiar/x509, which needs it first (as the Worker's entry does)
      (await import(issuerConfig.href)).parseWorkerConfig(env);
    }
  : undefined;
const code = await main(process.argv.slice(2), issuerConfigCheck);
// let stdout drain (large JSON dumps into a pipe) before exiting
process.exitCode = code;
