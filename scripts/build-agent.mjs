// Bundles the agent (src/agent/main.ts and everything it imports, node_modules included) into one ESM file,
// dist/agent/main.js, so `wisp-agent` starts without tsx: no TypeScript compiled at start-up, no loader
// thread, one file to load instead of hundreds (docs/performance.md, agent RSS). Run by the root
// `postinstall` after build-native.mjs and by `npm run build:agent`. The native addon build/peercred.node
// stays outside the bundle: src/agent/workload-api/peer.ts finds it relative to the bundle's own URL.
//
// dist/agent/inputs.json lists the repository's own source files in the bundle; `agentBundle()` (used by
// bin/wisp-agent.js and scripts/local-stack.ts) returns the bundle only when none of them is newer, so an
// edited src/ never runs stale code: they fall back to tsx until the next `npm run build:agent`.
// Without esbuild (an install with --omit=dev) the build warns and exits 0; tsx is a devDependency too.
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'agent', 'main.js');
const inputsFile = join(root, 'dist', 'agent', 'inputs.json');

/** The bundle's path when it exists and is at least as new as every source file it was built from, else undefined. */
export function agentBundle() {
  try {
    const built = statSync(outfile).mtimeMs;
    const inputs = JSON.parse(readFileSync(inputsFile, 'utf8'));
    return inputs.every((f) => statSync(join(root, f)).mtimeMs <= built) ? outfile : undefined;
  } catch {
    return undefined; // missing bundle, missing list, or a source file gone: not fresh
  }
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
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(root, 'src', 'agent', 'main.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    legalComments: 'none',
    // V8 keeps a module's whole source text for as long as the process runs (lazy compilation, toString):
    // without whitespace and comments it is 1.5 MB instead of 2.3 MB. Identifiers are kept, so stack traces
    // still name functions; positions map back through the linked source map (node --enable-source-maps).
    minifyWhitespace: true,
    minifySyntax: true,
    // CommonJS dependencies (grpc-js, pino, commander) call require() for Node built-ins; ESM output has none
    banner: { js: "import { createRequire as __wispCreateRequire } from 'node:module'; const require = __wispCreateRequire(import.meta.url);" },
    // the addon is loaded at run time by path (peer.ts), never bundled
    external: ['*.node'],
    logLevel: 'warning',
    metafile: true,
  });
  // one character above U+00FF makes V8 hold the whole source as UTF-16, twice the memory; esbuild escapes
  // strings (charset ascii) and whitespace minification drops comments, so this only guards against regressions
  const nonAscii = readFileSync(outfile).findIndex((byte) => byte > 0x7f);
  if (nonAscii >= 0) console.warn(`build-agent: ${relative(root, outfile)} is not ASCII at offset ${nonAscii}: V8 keeps it as UTF-16, twice the memory`);
  const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.includes('node_modules/')).map((f) => relative(root, resolve(root, f)));
  writeFileSync(inputsFile, `${JSON.stringify(inputs, null, 1)}\n`);
  if (analyze) console.log(await esbuild.analyzeMetafile(result.metafile));
  console.log(`build-agent: ${relative(root, outfile)} (${inputs.length} source files)`);
  return outfile;
}

const isMain = process.argv[1] !== undefined && existsSync(process.argv[1]) && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) await buildAgent({ analyze: process.argv.includes('--analyze') });
