/**
 * D1's own work per operation: the statements an operation ran (captured by the meter) replayed with Node's
 * SQLite on a copy of the run's D1 database, a batch as one transaction, as D1 runs it. D1 is SQLite on one
 * thread, so this is the execution time its thread spends; the durable commit D1 adds on top (replication of
 * the write-ahead log) is not measurable locally, so writes are replayed with `synchronous = OFF`.
 * (In workerd the statements' `meta.duration` does not help: workerd's clock stands still while code runs.)
 */
import { copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { StatementGroup } from './meter.js';

/** the D1 database file Miniflare persisted under `stateDir` (the largest one that is not its metadata) */
function d1File(stateDir: string): string {
  const dir = join(stateDir, 'v3', 'd1', 'miniflare-D1DatabaseObject');
  const files = readdirSync(dir).filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
  const biggest = files.sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
  if (!biggest) throw new Error(`no D1 database under ${dir}`);
  return join(dir, biggest);
}

/** Copies the D1 database (with its WAL) to `to`, while the issuer still runs: a snapshot to replay on. */
export function snapshotD1(stateDir: string, to: string): void {
  const from = d1File(stateDir);
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

/** ms of SQLite work per operation: `groups` (the statements of `ops` operations) replayed `reps` times */
export function replayMsPerOp(file: string, groups: StatementGroup[], ops: number, reps: number): number {
  const db = new DatabaseSync(file);
  try {
    db.exec('PRAGMA synchronous = OFF');
    const prepared = groups.map((g) => g.map((q) => ({ stmt: db.prepare(q.sql), params: q.params as (string | number | null)[] })));
    const run = () => {
      for (const g of prepared) {
        if (g.length > 1) db.exec('BEGIN');
        for (const q of g) q.stmt.all(...q.params);
        if (g.length > 1) db.exec('COMMIT');
      }
    };
    run(); // warm: pages in the cache, as D1's hot database has them
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    return (performance.now() - t0) / reps / ops;
  } finally {
    db.close();
  }
}
