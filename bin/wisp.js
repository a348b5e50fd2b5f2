#!/usr/bin/env node
// Launcher for `wisp`, the admin CLI: runs the TypeScript sources through tsx (as the rest of the repo does).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
// let stdout drain (large JSON dumps into a pipe) before exiting
process.exitCode = code;
