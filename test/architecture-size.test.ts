/**
 * No source file over ~400 lines without a reason in its header (STYLE G2: split by concept past that). A
 * longer file says why in its first comment with the words "over 400 lines". Generated files are exempt.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const MAX_LINES = 420;
const GENERATED = [/\/gen\//, /worker-configuration\.d\.ts$/];

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|mjs)$/.test(name)) out.push(relative(ROOT, path));
  }
  return out;
}

it(`source files over ${MAX_LINES} lines say why in their header`, () => {
  const unexplained = sources(join(ROOT, 'src'))
    .filter((f) => !GENERATED.some((g) => g.test(f)))
    .map((f) => ({ f, lines: readFileSync(join(ROOT, f), 'utf8').split('\n') }))
    .filter(({ lines }) => lines.length > MAX_LINES && !lines.slice(0, 20).some((l) => /over 400 lines/i.test(l)))
    .map(({ f, lines }) => `${f}: ${lines.length} lines`);
  expect(unexplained).toEqual([]);
});
