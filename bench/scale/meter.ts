/**
 * The driver's side of the scale run's meter (meter-worker.ts): builds it next to the bundled issuer, starts
 * the issuer with it, and reads or resets its counters.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/local-stack.js';
import { fetchRetry, startIssuer, type Issuer } from '../stack.js';

const ESBUILD = join(REPO_ROOT, 'node_modules', '.bin', 'esbuild');

export interface DoCount {
  calls: number;
  ms: number;
}
export interface Counters {
  /** CA object name → method → calls and summed wall time */
  do: Record<string, Record<string, DoCount>>;
  d1: { statements: number; batches: number; rowsRead: number; rowsWritten: number; durationMs: number; unmetered: number };
  /** request path → count */
  requests: Record<string, number>;
}

export interface MeteredIssuer extends Issuer {
  counters(): Promise<Counters>;
  reset(): Promise<void>;
  setShards(n: number): Promise<void>;
  /** wall time of one request making `n` sequential calls of a CA method (`keys`, `x509`, `jwt`, `status`) */
  doCalls(op: string, n: number): Promise<number>;
  /** records the D1 statements the issuer runs from now on (`false`: stops) */
  capture(on: boolean): Promise<void>;
  captured(): Promise<StatementGroup[]>;
}

/** statements issued together (a D1 batch, or one statement) */
export type StatementGroup = { sql: string; params: unknown[] }[];

export async function startMeteredIssuer(dir: string): Promise<MeteredIssuer> {
  const r = spawnSync(ESBUILD, [join(REPO_ROOT, 'bench', 'scale', 'meter-worker.ts'), '--bundle', '--format=esm', '--external:./worker/index.js', `--outfile=${join(dir, 'meter.js')}`, '--log-level=warning'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`esbuild meter-worker: ${r.stderr}`);
  const issuer = await startIssuer(dir, { mainModule: 'meter.js' });
  const control = async (path: string) => {
    const res = await fetchRetry(`${issuer.url}/__scale/${path}`);
    const text = await res.text();
    if (!res.ok) throw new Error(`meter ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text;
  };
  return {
    ...issuer,
    counters: async () => JSON.parse(await control('counters')) as Counters,
    reset: async () => void (await control('reset')),
    setShards: async (n) => void (await control(`shards?n=${n}`)),
    async doCalls(op, n) {
      const t0 = performance.now();
      await control(`do?op=${op}&n=${n}`);
      return performance.now() - t0;
    },
    capture: async (on) => void (await control(`capture?on=${on ? 1 : 0}`)),
    captured: async () => JSON.parse(await control('captured')) as StatementGroup[],
  };
}

/** DO calls summed over every CA object and method (or one method) */
export function doCalls(c: Counters, method?: string): number {
  let n = 0;
  for (const byMethod of Object.values(c.do)) for (const [m, v] of Object.entries(byMethod)) if (!method || m === method) n += v.calls;
  return n;
}
