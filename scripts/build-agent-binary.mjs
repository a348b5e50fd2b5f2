// Builds dist/bin/wisp-agent: the agent as one Linux x64 executable (Node's single executable applications),
// for machines with no Node and no npm (docs/install-agent.md). `npm run build:agent-binary`.
//
// - The Node inside is the pinned LTS from the npm registry (scripts/pinned-node.mjs), never the system's.
// - The script is the agent bundle of scripts/build-agent.mjs (dist/agent/agent.cjs: every dependency inlined,
//   only Node built-ins left to require, which is all a SEA's require can load).
// - The SO_PEERCRED addon is built with that same Node (its headers, so the ABI the executable runs) and
//   embedded as an asset with its SHA-256; src/agent/workload-api/peer.ts writes it to a private directory,
//   checks the hash and process.dlopen()s it. Embedded rather than shipped beside the binary: one file to
//   copy, install and upgrade atomically, and no second file whose version could drift from the binary's.
// - Code cache on (useCodeCache): V8 bytecode compiled at build time, so start-up skips parsing 1.8 MB of
//   JavaScript. No startup snapshot (useSnapshot): the entry would have to run inside the snapshot builder,
//   where the agent's modules (grpc-js, pino) keep handles a snapshot cannot hold.
// - Not stripped: strip(1) takes only ~2.5 MiB of the official binary's 121 MiB and warns about its notes.
//
// `agentBinary()` returns the executable when it is newer than everything it is built from (tests reuse it).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentBundle, buildAgent } from './build-agent.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'dist', 'sea');
export const AGENT_BINARY = join(root, 'dist', 'bin', 'wisp-agent');
/** Resource name and fuse Node's SEA loader looks for (Node's docs, "Single executable applications"). */
const SEA_RESOURCE = 'NODE_SEA_BLOB';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** What the binary is built from besides the bundle's own sources (those: dist/agent/inputs.json). */
const EXTRA_INPUTS = ['scripts/build-agent-binary.mjs', 'scripts/build-native.mjs', 'scripts/pinned-node.mjs', 'native/peercred/peercred.cc', 'native/peercred/binding.gyp', 'package.json'];
/** Asset keys: the same strings as SEA_ASSETS in src/agent/sea.ts. */
const ASSETS = { addon: 'peercred.node', addonSha256: 'peercred.node.sha256', version: 'version' };

/** dist/bin/wisp-agent when it exists and is newer than the bundle and every input, else undefined. */
export function agentBinary() {
  try {
    const bundle = agentBundle();
    if (!bundle) return undefined;
    const built = statSync(AGENT_BINARY).mtimeMs;
    const inputs = [bundle, join(root, 'dist', 'agent', 'agent.cjs'), ...EXTRA_INPUTS.map((f) => join(root, f))];
    return inputs.every((f) => statSync(f).mtimeMs <= built) ? AGENT_BINARY : undefined;
  } catch {
    return undefined;
  }
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`build-agent-binary: ${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

/** The system npm's node-gyp: the pinned Node comes without npm, and node-gyp must not be downloaded. */
function nodeGypPath() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  const candidate = npm ? join(dirname(realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : '';
  if (!candidate || !existsSync(candidate)) throw new Error('build-agent-binary: node-gyp not found (npm is needed to build the addon)');
  return candidate;
}

export async function buildAgentBinary() {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`build-agent-binary: linux-x64 only (this is ${process.platform}-${process.arch})`);
  const { ensureNode, PINNED_NODE_VERSION } = await import('./pinned-node.mjs');
  const node = ensureNode();
  const bundleEntry = agentBundle() ?? (await buildAgent());
  if (!bundleEntry) throw new Error('build-agent-binary: the agent bundle could not be built (esbuild missing?)');

  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const addon = join(work, ASSETS.addon);
  run(node, [join(root, 'scripts', 'build-native.mjs'), '--out', addon], { env: { ...process.env, npm_config_node_gyp: nodeGypPath() } });
  const sha256 = createHash('sha256').update(readFileSync(addon)).digest('hex');
  writeFileSync(join(work, ASSETS.addonSha256), `${sha256}\n`);
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  writeFileSync(join(work, ASSETS.version), `${version}\n`);

  // the bundle, without its source-map comment (the map is not shipped); it runs the CLI itself: in a SEA
  // process.argv[1] is the executable, which is the bundle's own URL (src/agent/main.ts, isEntryPoint)
  const main = join(work, 'main.cjs');
  writeFileSync(main, readFileSync(join(root, 'dist', 'agent', 'agent.cjs'), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n'));
  const blob = join(work, 'sea-prep.blob');
  const seaConfig = {
    main,
    output: blob,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: true,
    assets: Object.fromEntries(Object.values(ASSETS).map((key) => [key, join(work, key)])),
  };
  writeFileSync(join(work, 'sea-config.json'), `${JSON.stringify(seaConfig, null, 2)}\n`);
  run(node, ['--experimental-sea-config', join(work, 'sea-config.json')]);

  mkdirSync(dirname(AGENT_BINARY), { recursive: true });
  const tmp = `${AGENT_BINARY}.tmp`;
  copyFileSync(node, tmp);
  chmodSync(tmp, 0o755);
  const { inject } = await import('postject');
  await inject(tmp, SEA_RESOURCE, readFileSync(blob), { sentinelFuse: SEA_FUSE });
  run('mv', ['-f', tmp, AGENT_BINARY]);
  const size = statSync(AGENT_BINARY).size;
  console.log(`build-agent-binary: ${relative(root, AGENT_BINARY)} (Node ${PINNED_NODE_VERSION}, ${(size / 1048576).toFixed(1)} MiB, addon sha256 ${sha256.slice(0, 16)}…)`);
  return AGENT_BINARY;
}

const isMain = process.argv[1] !== undefined && existsSync(process.argv[1]) && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  try {
    await buildAgentBinary();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
