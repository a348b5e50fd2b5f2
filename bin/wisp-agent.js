#!/usr/bin/env node
// wisp-agent launcher: runs the precompiled bundle dist/agent/main.js (built by scripts/build-agent.mjs from
// the root `postinstall`, or `npm run build:agent`) when it exists and is not older than its sources.
// Otherwise it registers tsx's ESM loader and runs the TypeScript entry point, which costs start-up time and
// memory (a loader thread, TypeScript compiled on the fly). Works from a fresh `npm ci`; no manual step.
// V8's compile cache (scripts/build-agent.mjs, enableCompileCache) makes the bundle's later starts cheaper for
// the short-lived commands (healthcheck, api, validate). Not for the `run` daemon: consuming the cache leaves
// it a few MB more RSS for ~20-40 ms less start-up (docs/performance.md, start-up); NODE_COMPILE_CACHE=<dir>
// turns it on there too (Node reads it before any of this runs).
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { agentBundle, enableCompileCache, registerTsx } from '../scripts/build-agent.mjs';

// the daemon keeps V8's young generation at its initial size (see capYoungGeneration in src/agent/main.ts),
// set here too so that loading the agent does not grow it first
if (process.argv[2] === 'run' && !/semi[-_]space/.test([...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' '))) {
  setFlagsFromString('--semi-space-growth-factor=1');
}

if (process.argv[2] !== 'run') enableCompileCache();
const bundle = agentBundle();
let main;
if (bundle) {
  ({ main } = await import(pathToFileURL(bundle).href));
} else {
  await registerTsx();
  ({ main } = await import('../src/agent/main.ts'));
}
process.exit(await main(process.argv));
