// Bundles the agent (src/agent/main.ts and everything it imports, node_modules included) into one file, so
// `wisp-agent` starts without tsx: no TypeScript compiled at start-up, no loader thread, one file to load
// instead of hundreds (docs/performance.md, agent RSS). Run by the root `postinstall` after
// build-native.mjs and by `npm run build:agent`, which also build the CLI's bundle (dist/cli, buildPackageBundles)
// so that a checkout's `wisp` starts without tsx too. The native addon build/peercred.node stays outside the
// bundle: src/agent/workload-api/peer.ts finds it relative to the bundle's own URL.
//
// Two files: dist/agent/agent.cjs is the bundle (CommonJS), and dist/agent/main.js a small ES module that
// loads it with `loadAgentBundle` and exports `main` (bin/wisp-agent.js imports it; `node dist/agent/main.js
// run …` runs the CLI). Neither `import` nor `require` loads the bundle, because both read a file whole into
// one malloc'd buffer: freeing a 1.5 MB block raises glibc's dynamic mmap threshold to 1.5 MB for the life
// of the process, after which each of V8's worker threads keeps up to 3 MB of freed compiler memory in its
// malloc arena, ~6 MB of the agent's RSS (docs/agent-config.md, memory).
//
// dist/agent/inputs.json lists the repository's own source files in the bundle; `agentBundle()` (used by
// bin/wisp-agent.js and scripts/local-stack.ts) returns the bundle only when none of them is newer, so an
// edited src/ never runs stale code: they fall back to tsx until the next `npm run build:agent`.
// Without esbuild (an install with --omit=dev) the build warns and exits 0; tsx is a devDependency too.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import Module from 'node:module';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StringDecoder } from 'node:string_decoder';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'agent', 'main.js');
const bundleFile = join(root, 'dist', 'agent', 'agent.cjs');
const inputsFile = join(root, 'dist', 'agent', 'inputs.json');

/** Read size of `loadAgentBundle`, bytes: below glibc's initial mmap threshold (128 KiB). */
const READ_CHUNK_BYTES = 64 * 1024;

/** The bundle's entry (dist/agent/main.js) when it exists and is at least as new as every source file it was built from, else undefined. */
export function agentBundle() {
  return isFresh([outfile, bundleFile], inputsFile) ? outfile : undefined;
}

/**
 * True when every file in `outputs` exists and none of the repository sources listed in `inputs` (written by
 * the build) is newer. In the npm package (no src/) there is nothing they could be older than. The check is a
 * stat per source file (~100): well under a millisecond next to the tsx fallback it avoids.
 */
function isFresh(outputs, inputs) {
  if (!existsSync(join(root, 'src'))) return outputs.every((f) => existsSync(f));
  try {
    const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
    return JSON.parse(readFileSync(inputs, 'utf8')).every((f) => statSync(join(root, f)).mtimeMs <= built);
  } catch {
    return false; // missing bundle, missing list, or a source file gone: not fresh
  }
}

/**
 * Turns on V8's compile cache (Node >= 22.1, `module.enableCompileCache`) for a launcher: the bundles' code is
 * then compiled once and read back on later starts instead of parsed and compiled again (docs/performance.md,
 * start-up). The cache is code this process will run, so it lives only in a directory private to this user:
 * NODE_COMPILE_CACHE when set (Node opened it before any of this ran), else $XDG_CACHE_HOME/wisp/compile-cache
 * or ~/.cache/wisp/compile-cache, created 0700 and used only when owned by this uid and closed to others.
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off. Any failure leaves it off: the cache is only ever a speed-up.
 */
export function enableCompileCache() {
  const { enableCompileCache: enable, getCompileCacheDir } = Module;
  if (typeof enable !== 'function' || process.env.NODE_DISABLE_COMPILE_CACHE || getCompileCacheDir?.()) return;
  const base = process.env.XDG_CACHE_HOME || (process.env.HOME ? join(process.env.HOME, '.cache') : undefined);
  if (!base || !isAbsolute(base)) return;
  const dir = join(base, 'wisp', 'compile-cache');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) return;
    enable(dir);
  } catch {
    // read-only or missing home: start without the cache
  }
}

/**
 * Runs the CommonJS bundle at `file` and returns its exports. The source is read through one 64 KiB
 * buffer into a string on the V8 heap, so no buffer the size of the file is ever malloc'd and freed (see
 * the header), and compiled as a CommonJS module (`Module.prototype._compile`: the standard wrapper,
 * and stack traces mapped through agent.cjs.map under `node --enable-source-maps`).
 */
export function loadAgentBundle(file) {
  const fd = openSync(file, 'r');
  let source = '';
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    // StringDecoder builds the string straight from the bytes; TextDecoder (ICU) mallocs 4x the chunk to do it
    const decoder = new StringDecoder('utf8');
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) source += decoder.write(buffer.subarray(0, n));
    source += decoder.end();
  } finally {
    closeSync(fd);
  }
  const bundle = new Module(file);
  bundle.filename = file;
  // where its external require()s resolve from (wrangler for the CLI's validate), as for any module at `file`
  bundle.paths = Module._nodeModulePaths(dirname(file));
  bundle._compile(source, file);
  return bundle.exports;
}

/** dist/agent/main.js: loads agent.cjs; runs the CLI when it is the process entry, as src/agent/main.ts does. */
const ENTRY_SOURCE = `// Generated by scripts/build-agent.mjs: the agent bundle is agent.cjs, loaded by loadAgentBundle (why: see there).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadAgentBundle } from '../../scripts/build-agent.mjs';

export const { main } = loadAgentBundle(fileURLToPath(new URL('./agent.cjs', import.meta.url)));

function isEntryPoint() {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}
if (isEntryPoint()) main(process.argv).then((code) => process.exit(code));
`;

/**
 * esbuild options of every bundle: one CommonJS file, dependencies inlined (see the comments below). Exported for
 * test/agent/lazy-x509.test.ts, which builds the agent's bundle elsewhere and checks what its start evaluates.
 */
export function bundleOptions(entry, out) {
  return {
    absWorkingDir: root,
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node22.12',
    sourcemap: 'linked',
    legalComments: 'none',
    // V8 keeps a module's whole source text for as long as the process runs (lazy compilation, toString):
    // without whitespace and comments it is 1.5 MB instead of 2.3 MB. Identifiers are kept, so stack traces
    // still name functions; positions map back through the linked source map (node --enable-source-maps).
    minifyWhitespace: true,
    minifySyntax: true,
    // the sources are ES modules: import.meta.url becomes the bundle's own URL (peer.ts finds the addon
    // relative to it; main.ts's entry check then never matches, dist/agent/main.js does that), and dynamic
    // import() of Node built-ins becomes require()
    // (ES modules are strict: the banner keeps "use strict" the bundle's first statement)
    banner: { js: "'use strict'; var __wispModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__wispModuleUrl' },
    supported: { 'dynamic-import': false },
    // the addon is loaded at run time by path (peer.ts), never bundled
    external: ['*.node'],
    // grpc-js' channelz and ORCA only (off in Wisp): see the stub
    alias: { '@grpc/proto-loader': './scripts/bundle-stubs/grpc-proto-loader.cjs' },
    logLevel: 'warning',
    metafile: true,
  };
}

export async function buildAgent({ analyze = false } = {}) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    console.warn('build-agent: esbuild is not installed; wisp-agent will run src/agent/main.ts through tsx');
    return undefined;
  }
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await esbuild.build(bundleOptions(join(root, 'src', 'agent', 'main.ts'), bundleFile));
  // one character above U+00FF makes V8 hold the whole source as UTF-16, twice the memory; esbuild escapes
  // strings (charset ascii) and whitespace minification drops comments, so this only guards against regressions
  const nonAscii = readFileSync(bundleFile).findIndex((byte) => byte > 0x7f);
  if (nonAscii >= 0) console.warn(`build-agent: ${relative(root, bundleFile)} is not ASCII at offset ${nonAscii}: V8 keeps it as UTF-16, twice the memory`);
  writeFileSync(outfile, ENTRY_SOURCE);
  const inputs = writeInputs(result.metafile, inputsFile);
  if (analyze) console.log(await esbuild.analyzeMetafile(result.metafile));
  console.log(`build-agent: ${relative(root, bundleFile)} (${inputs.length} source files), loaded by ${relative(root, outfile)}`);
  return outfile;
}

/** Writes the repository's own source files in a bundle (its freshness check, `isFresh`) to `file`; returns them. */
function writeInputs(metafile, file) {
  const inputs = Object.keys(metafile.inputs).filter((f) => !f.includes('node_modules/')).map((f) => relative(root, resolve(root, f)));
  writeFileSync(file, `${JSON.stringify(inputs, null, 1)}\n`);
  return inputs;
}

/** The commands the npm package ships as bundles (`dist/<name>/<name>.cjs`), by their source directory under src/. */
const PACKAGE_COMMANDS = ['cli', 'csi', 'controller'];

/**
 * The CLI, CSI driver and controller manager bundles (`dist/<name>/<name>.cjs`, with the list of their sources beside them): all
 * three for the npm package (`prepack`: it ships no src/ and no tsx); `build:agent` and postinstall build the
 * CLI's too, so a checkout's `wisp` starts from it while it is fresh (`loadCommand`).
 */
export async function buildPackageBundles(names = PACKAGE_COMMANDS) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    console.warn(`build-agent: esbuild is not installed; ${names.join(', ')} will run through tsx`);
    return;
  }
  for (const name of names) {
    const out = join(root, 'dist', name, `${name}.cjs`);
    mkdirSync(dirname(out), { recursive: true });
    // wrangler (wisp validate reads wrangler.toml with it) is not in the package: left out, validate says so
    const options = bundleOptions(join(root, 'src', name, 'main.ts'), out);
    const result = await esbuild.build({ ...options, external: [...options.external, 'wrangler'], sourcemap: false });
    writeInputs(result.metafile, join(dirname(out), 'inputs.json'));
    console.log(`build-agent: ${relative(root, out)}`);
  }
}

/** dist/<name>/<name>.cjs when it exists and is fresh (see isFresh), else undefined. */
export function commandBundle(name) {
  const dir = join(root, 'dist', name);
  const bundle = join(dir, `${name}.cjs`);
  return isFresh([bundle], join(dir, 'inputs.json')) ? bundle : undefined;
}

/**
 * The `main` of a command's launcher (bin/wisp.js, bin/wisp-csi-driver.js, bin/wisp-controller-manager.js): its
 * bundle when that is fresh (always in the npm package, which has no src/), else the TypeScript sources
 * through tsx (a checkout that has not built it, or has edited a source since).
 */
export async function loadCommand(name) {
  const bundle = commandBundle(name);
  if (bundle) return loadAgentBundle(bundle).main;
  await registerTsx();
  return (await import(pathToFileURL(join(root, 'src', name, 'main.ts')).href)).main;
}

/** Registers tsx's loader once (TypeScript sources in a checkout). */
export async function registerTsx() {
  if (tsxRegistered) return;
  const { register } = await import('tsx/esm/api');
  register();
  tsxRegistered = true;
}
let tsxRegistered = false;

const isMain = process.argv[1] !== undefined && existsSync(process.argv[1]) && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && !existsSync(join(root, 'src'))) {
  // postinstall of the installed npm package: its bundles are prebuilt and there is nothing to build them from
} else if (isMain && process.argv.includes('--package')) {
  // prepack: the agent bundle is rebuilt only when stale, so a pack never rewrites the files a running agent
  // or test is loading; the addon is the one postinstall built (N-API: any supported Node loads it)
  if (!existsSync(join(root, 'build', 'peercred.node'))) {
    console.error('build-agent --package: build/peercred.node is missing; run npm run build:native first');
    process.exit(1);
  }
  if (!agentBundle()) await buildAgent();
  await buildPackageBundles();
} else if (isMain) {
  await buildAgent({ analyze: process.argv.includes('--analyze') });
  await buildPackageBundles(['cli']);
}
