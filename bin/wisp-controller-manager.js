#!/usr/bin/env node
// Launcher for `wisp-controller-manager` (src/controller): the sources through tsx in a checkout, the prebuilt
// bundle in the npm package (scripts/build-agent.mjs, loadCommand).
import { loadCommand } from '../scripts/build-agent.mjs';

const main = await loadCommand('controller');
process.exit(await main(process.argv));
