#!/usr/bin/env node
// Launcher for `wisp-controller-manager` (src/controller): runs the TypeScript sources through tsx, as
// bin/wisp-csi-driver.js does for the CSI driver.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/controller/main.ts');
process.exit(await main(process.argv));
