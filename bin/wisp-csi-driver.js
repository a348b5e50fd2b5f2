#!/usr/bin/env node
// Launcher for `wisp-csi-driver`, the SPIFFE CSI driver (src/csi): the sources through tsx in a checkout, the
// prebuilt bundle in the npm package (scripts/build-agent.mjs, loadCommand).
import { loadCommand } from '../scripts/build-agent.mjs';

const main = await loadCommand('csi');
process.exit(await main(process.argv));
