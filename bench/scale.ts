/**
 * `npm run bench:scale`: the scale section (scale-section.ts) alone, as `npm run bench` runs it, with its
 * per-operation costs and the model's assumptions beside the figures, into a gitignored results file next to this one.
 * `--quick`: a reduced fleet (harness check). Never part of `npm test`.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../scripts/local-stack.js';
import { results, rows } from './report.js';
import { benchScale } from './scale-section.js';
import { QUICK } from './stats.js';

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`Wisp scale run: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}${QUICK ? ', --quick' : ''}`);
  const { assumptions, costs } = await benchScale();
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, date: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), quick: QUICK };
  writeFileSync(join(REPO_ROOT, 'bench', 'scale-results.json'), `${JSON.stringify({ machine, assumptions, costs, ...results }, null, 2)}\n`);
  console.log(`\n| key | value | limit / baseline | target | met |\n| --- | --- | --- | --- | --- |`);
  for (const r of rows) console.log(`| \`${r.key}\` | ${r.value} | ${r.limit ?? ''} | ${r.target ?? 'report'} | ${r.met === undefined ? '' : r.met ? 'yes' : 'no'} |`);
  console.log(`\n${machine.cores} cores, ${machine.cpu}, Node ${machine.node}; ${machine.seconds} s; written to bench/scale-results.json`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
