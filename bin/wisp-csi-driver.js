#!/usr/bin/env node
// Launcher for `wisp-csi-driver`, the SPIFFE CSI driver (src/csi): runs the TypeScript sources through tsx, as
// bin/wisp.js does for the CLI, or in the npm package (no src/) its prebuilt bundle dist/csi/csi.cjs.
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const csiBundle = fileURLToPath(new URL('../dist/csi/csi.cjs', import.meta.url));
let main;
if (!existsSync(fileURLToPath(new URL('../src/csi/main.ts', import.meta.url))) && existsSync(csiBundle)) {
  const { loadAgentBundle } = await import('../scripts/build-agent.mjs');
  ({ main } = loadAgentBundle(csiBundle));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/csi/main.ts'));
}
process.exit(await main(process.argv));
