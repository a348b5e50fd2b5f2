#!/usr/bin/env node
// Launcher for `wisp`, the admin CLI: runs the TypeScript sources through tsx (as the rest of the repo does).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
// `wisp validate` checks the issuer's config with the issuer's own parser; src/cli may not import src/worker,
// so the launcher hands it in (loaded only when called)
const issuerConfigCheck = async (env) => void (await import('../src/worker/config.ts')).parseWorkerConfig(env);
const code = await main(process.argv.slice(2), issuerConfigCheck);
// let stdout drain (large JSON dumps into a pipe) before exiting
process.exitCode = code;
