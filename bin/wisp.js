#!/usr/bin/env node
// Launcher for `wisp`, the admin CLI: the sources through tsx in a checkout, the prebuilt bundle in the npm
// package (scripts/build-agent.mjs, loadCommand).
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';
import { loadCommand } from '../scripts/build-agent.mjs';

const main = await loadCommand('cli');
// `wisp validate` checks the issuer's config with the issuer's own parser; src/cli may not import src/worker,
// so the launcher hands it in (loaded only when called). The package has no issuer sources: validate says so.
const issuerConfig = new URL('../src/worker/config.ts', import.meta.url);
const issuerConfigCheck = existsSync(fileURLToPath(issuerConfig)) ? async (env) => void (await import(issuerConfig.href)).parseWorkerConfig(env) : undefined;
const code = await main(process.argv.slice(2), issuerConfigCheck);
// let stdout drain (large JSON dumps into a pipe) before exiting
process.exitCode = code;
