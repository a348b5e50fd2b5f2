// Builds the SO_PEERCRED addon (native/peercred) with node-gyp; run by the root `postinstall`, so `npm ci`
// needs no manual step. Headers come from the running Node (`--nodedir` = `<node>/../..`): node-gyp must
// never download them (only the package registries are reachable here). Output: build/peercred.node (gitignored), loaded by
// src/agent/workload-api/peer.ts. Linux only: elsewhere it warns and exits 0 (no SO_PEERCRED there).
// `--out <file>`: write the addon there instead (scripts/build-agent-binary.mjs builds one with the pinned Node).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'peercred');
const outFlag = process.argv.indexOf('--out');
const output = outFlag > 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : join(root, 'build', 'peercred.node');

if (!existsSync(join(addonDir, 'binding.gyp'))) {
  // postinstall of the npm package: it ships build/peercred.node prebuilt (N-API, any Node >= 20) and no native/
  if (!existsSync(output)) console.warn(`build-native: neither native/peercred nor ${output}: the Workload API server cannot read SO_PEERCRED`);
  process.exit(0);
}
if (process.platform !== 'linux') {
  console.warn(`build-native: skipped on ${process.platform}; the Workload API server needs Linux SO_PEERCRED`);
  process.exit(0);
}

/** npm's own node-gyp: npm sets npm_config_node_gyp for lifecycle scripts; otherwise look next to npm. */
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  const npmExec = process.env.npm_execpath; // .../npm/bin/npm-cli.js
  if (npmExec) candidates.push(join(dirname(npmExec), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(resolve(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency of the project; npm's bundled copy is the usual one
  }
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error(`build-native: node-gyp not found (tried ${candidates.filter(Boolean).join(', ')})`);
  return found;
}

const nodeGyp = findNodeGyp();
const nodedir = resolve(process.execPath, '..', '..');
const args = [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--release', `--directory=${addonDir}`];
// npm passes an npmrc `nodedir` to lifecycle scripts as npm_config_nodedir, which node-gyp prefers to --nodedir:
// set it too, so the headers are the running (possibly pinned, scripts/pinned-node.mjs) Node's, not the system's.
const env = { ...process.env, npm_config_nodedir: nodedir };
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: addonDir, env });
if (result.status !== 0) {
  console.error(`build-native: node-gyp failed (status ${result.status ?? result.signal}); needs python3, make and g++`);
  process.exit(1);
}
mkdirSync(dirname(output), { recursive: true });
copyFileSync(join(addonDir, 'build', 'Release', 'peercred.node'), output);
console.log(`build-native: ${output}`);
