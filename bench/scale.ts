/**
 * `npm run bench:scale`: the scale section (scale-section.ts) alone, as `npm run bench` runs it, with its
 * per-operation costs and the model's assumptions beside the figures, into a gitignored results file next to this one.
 * `--quick`: a reduced fleet (harness check). Never part of `npm test`.
 */
import { cpus } from 'node:os';
import { writeResults } from './report.js';
import { benchScale } from './scale-section.js';
import { QUICK } from './stats.js';

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`Wisp scale run: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}${QUICK ? ', --quick' : ''}`);
  const { assumptions, costs } = await benchScale();
  writeResults('scale-results.json', started, { assumptions, costs }, { quick: QUICK });
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
