// Generates src/worker/worker-configuration.d.ts (the Env type) from wrangler.toml and .dev.vars.example,
// never from a developer's own .dev.vars, so a clean clone reproduces the committed file. `--check` (run by
// `npm run typecheck`) fails when the committed file differs in any byte. wrangler 4.157's own `types --check`
// honours --env-file but compares only the header (config hash, workerd version), not a hand-edited body, hence
// this script: it generates a sibling file (same directory, so the relative imports match) and compares it whole,
// the path in the header's command line rewritten to the target's.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = 'src/worker/worker-configuration.d.ts';
const SCRATCH = 'src/worker/.worker-configuration.generated.d.ts';
const ARGS = ['--strict-vars=false', '--env-file', '.dev.vars.example'];
const check = process.argv.includes('--check');

const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const run = spawnSync(process.execPath, [wrangler, 'types', SCRATCH, ...ARGS], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' },
});
let generated;
try {
  if (run.status !== 0) throw new Error(`wrangler types failed:\n${run.stdout}\n${run.stderr}`);
  // the header names the command; written as if run on the target itself
  generated = readFileSync(join(root, SCRATCH), 'utf8').replace(` ${SCRATCH}`, ` ${TARGET}`);
} finally {
  rmSync(join(root, SCRATCH), { force: true });
}

if (!check) {
  writeFileSync(join(root, TARGET), generated);
  console.log(`worker-types: wrote ${TARGET}`);
} else if (readFileSync(join(root, TARGET), 'utf8') !== generated) {
  console.error(`worker-types: ${TARGET} is out of date with wrangler.toml / .dev.vars.example: run npm run cf-typegen`);
  process.exit(1);
} else {
  console.log(`worker-types: ${TARGET} is up to date`);
}
