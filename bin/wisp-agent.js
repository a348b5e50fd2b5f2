#!/usr/bin/env node
// wisp-agent launcher: runs the precompiled bundle dist/agent/main.js (built by scripts/build-agent.mjs from
// the root `postinstall`, or `npm run build:agent`) when it exists and is not older than its sources.
// Otherwise it registers tsx's ESM loader and runs the TypeScript entry point, which costs start-up time and
// memory (a loader thread, TypeScript compiled on the fly). Works from a fresh `npm ci`; no manual step.
// V8's compile cache (scripts/build-agent.mjs, enableCompileCache) makes the bundle's later starts cheaper.
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { agentBundle, enableCompileCache, registerTsx } from '../scripts/build-agent.mjs';

// the daemon keeps V8's young generation at its initial size (see capYoungGeneration in src/agent/main.ts),
// set here too so that loading the agent does not grow it first
if (process.argv[2] === 'run' && !/semi[-_]space/.test([...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' '))) {
  setFlagsFromString('--semi-space-growth-factor=1');
}

enableCompileCache();
const bundle = agentBundle();
let main;
if (bundle) {
  ({ main } = await import(pathToFileURL(bundle).href));
} else {
  await registerTsx();
  ({ main } = await import('../src/agent/main.ts'));
}
process.exit(await main(process.argv));
