/** The bench's results table: every figure recorded with its limit (and target) as it is measured; written to bench/results.json. */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../scripts/local-stack.js';

export interface Row {
  key: string;
  value: number;
  limit?: string;
  target?: string;
  met?: boolean;
}

export const results: Record<string, number | string> = {};
export const rows: Row[] = [];

export function record(key: string, value: number, extra: { limit?: string; target?: string; met?: boolean } = {}): void {
  results[key] = value;
  rows.push({ key, value, ...extra });
  console.log(`  ${key} = ${value}${extra.limit ? `  (limit: ${extra.limit})` : ''}`);
}

/**
 * Writes `bench/<fileName>` (the machine, `extra`, then every recorded figure) and prints the table and a
 * closing line: the end of `npm run bench` (run.ts) and of `npm run bench:scale` (scale.ts).
 */
export function writeResults(fileName: string, startedAt: number, extra: Record<string, unknown> = {}, machineExtra: Record<string, unknown> = {}): void {
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, date: new Date().toISOString(), seconds: Math.round((Date.now() - startedAt) / 1000), ...machineExtra };
  writeFileSync(join(REPO_ROOT, 'bench', fileName), `${JSON.stringify({ machine, ...extra, ...results }, null, 2)}\n`);
  console.log(`\n| key | value | limit / baseline | target | met |\n| --- | --- | --- | --- | --- |`);
  for (const r of rows) console.log(`| \`${r.key}\` | ${r.value} | ${r.limit ?? ''} | ${r.target ?? 'report'} | ${r.met === undefined ? '' : r.met ? 'yes' : 'no'} |`);
  console.log(`\n${machine.cores} cores, ${machine.cpu}, Node ${machine.node}; ${machine.seconds} s; written to bench/${fileName}`);
}
