#!/usr/bin/env node
// wisp-agent launcher: registers tsx's ESM loader (a regular dependency-free hook from node_modules/tsx),
// then runs the TypeScript entry point. Works from a fresh `npm ci`; no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/agent/main.ts');
process.exit(await main(process.argv));
