#!/usr/bin/env node
// wisp-agent launcher: runs the precompiled bundle dist/agent/main.js (built by scripts/build-agent.mjs from
// the root `postinstall`, or `npm run build:agent`) when it exists and is not older than its sources.
// Otherwise it registers tsx's ESM loader and runs the TypeScript entry point, which costs start-up time and
// memory (a loader thread, TypeScript compiled on the fly). Works from a fresh `npm ci`; no manual step.
import { pathToFileURL } from 'node:url';
import { agentBundle } from '../scripts/build-agent.mjs';

const bundle = agentBundle();
let main;
if (bundle) {
  ({ main } = await import(pathToFileURL(bundle).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/agent/main.ts'));
}
process.exit(await main(process.argv));
