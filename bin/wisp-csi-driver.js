#!/usr/bin/env node
// Launcher for `wisp-csi-driver`, the SPIFFE CSI driver (src/csi): runs the TypeScript sources through tsx,
// as bin/wisp.js does for the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/csi/main.ts');
process.exit(await main(process.argv));
