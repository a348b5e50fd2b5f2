/**
 * Gives memory back after a burst of work (the first sync of many SVIDs, a wave of Workload API connections).
 * glibc returns freed malloc memory to the kernel only from the top of the main heap: after 100 connections'
 * http2 sessions and read buffers are freed, tens of MB stay resident, free but pinned by a few live chunks
 * (measured: 69 MB of malloc arenas holding 9 MB in use; docs/performance.md, agent memory). V8 likewise keeps
 * its grown heap until its memory reducer runs, seconds later. So once a second, when the event loop was
 * mostly idle over that second, no workload called, and the RSS has grown since the last pass, the keeper runs
 * a full GC (only when the heap holds enough to reclaim) and malloc_trim(0). Connections that closed since the
 * last pass also make one due, with a GC: a pass taken while they were open (between a fan-out's rounds, say)
 * set the baseline with their memory in it, and what they free shows as no growth at all (measured: the RSS
 * stayed at 103 MB after 1,000 streams on 20 connections closed, 87 MB with this pass). Busy seconds are
 * skipped, and so is any second with Workload API calls, however light: the GC pauses the loop for 100-200 ms,
 * which would land on a caller (a light, steady load leaves the loop mostly idle, so idleness alone does not tell).
 * @module
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often the keeper looks, ms. */
export const MEMORY_KEEPER_INTERVAL_MS = 1000;
/** Event-loop utilization over the last interval above which it is busy: leave it alone. */
const BUSY_ELU = 0.25;
/** RSS growth since the last pass (or the lowest RSS seen since) that makes a pass worth it, bytes. */
const RSS_GROWTH_BYTES = 1 * 1024 * 1024;
/** RSS growth since the last pass after which a full GC runs whatever the heap's slack, bytes (it also unmaps V8's pooled pages). */
const GC_RSS_GROWTH_BYTES = 8 * 1024 * 1024;
/** Connections closed since the last pass (from the most open since) that make a pass with a GC due: a few closes are not worth one. */
const CLOSED_CONNECTIONS_FOR_PASS = 4;
/** Heap committed beyond the used part that makes a full GC worth it, bytes. */
const HEAP_SLACK_BYTES = 4 * 1024 * 1024;

export interface MemoryKeeperOptions {
  /** malloc_trim(0) (the addon, workload-api/peer.ts) */
  trim: () => boolean;
  /** a full GC; default: V8's, through a context with `gc` exposed */
  gc?: () => void;
  intervalMs?: number;
  /** default: process.memoryUsage() */
  memory?: () => { rss: number; heapTotal: number; heapUsed: number };
  /** a count that moves while workloads are calling (the Workload API's calls and connections): no pass while it does */
  activity?: () => number;
  /** the open Workload API connections: a pass is due when some closed since the last one */
  connections?: () => number;
  /** what one pass did (debug log) */
  onPass?: (pass: { rssBefore: number; rssAfter: number; gc: boolean; ms: number }) => void;
}

/**
 * V8's full GC, without exposing `gc` to the agent's own context (only the throwaway one gets it). The
 * "last-resort" flavor is V8's memory-reducing collection: it also unmaps the pages the heap kept pooled after
 * shrinking, which a plain gc() leaves resident until V8's memory reducer runs, 8 s or more later.
 */
export function v8FullGc(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
  return () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** Runs until `signal` aborts. */
export async function runMemoryKeeper(options: MemoryKeeperOptions, signal: AbortSignal): Promise<void> {
  // V8's collector is set up at the first pass that collects, not at start: a new context costs a restart ~3 ms
  let v8Gc: (() => void) | undefined;
  const gc = options.gc ?? (() => (v8Gc ??= v8FullGc())());
  const memory = options.memory ?? (() => process.memoryUsage());
  let lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  let rssAfterLastPass = memory().rss;
  let trimming = true;
  let lastActivity = options.activity?.();
  const connections = options.connections ?? (() => 0);
  /** the most connections open since the last pass */
  let peakConnections = connections();
  const tick = () => {
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    const activity = options.activity?.();
    const called = activity !== lastActivity;
    lastActivity = activity;
    const open = connections();
    peakConnections = Math.max(peakConnections, open);
    if (elu.utilization > BUSY_ELU || called) return;
    const { rss: rssBefore, heapTotal, heapUsed } = memory();
    const closed = peakConnections - open >= CLOSED_CONNECTIONS_FOR_PASS;
    if (rssBefore - rssAfterLastPass < RSS_GROWTH_BYTES && !closed) {
      rssAfterLastPass = Math.min(rssAfterLastPass, rssBefore);
      return;
    }
    const started = performance.now();
    // closed sessions' native buffers are freed only once a GC finalizes their objects
    const collect = closed || heapTotal - heapUsed > HEAP_SLACK_BYTES || rssBefore - rssAfterLastPass > GC_RSS_GROWTH_BYTES;
    if (collect) gc();
    if (trimming) {
      try {
        options.trim();
      } catch {
        trimming = false; // no addon (it is also what the Workload API needs): GC only from now on
      }
    }
    rssAfterLastPass = memory().rss;
    peakConnections = open;
    options.onPass?.({ rssBefore, rssAfter: rssAfterLastPass, gc: collect, ms: performance.now() - started });
  };
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setInterval(tick, options.intervalMs ?? MEMORY_KEEPER_INTERVAL_MS);
    timer.unref();
    signal.addEventListener('abort', () => (clearInterval(timer), resolve()), { once: true });
  });
}
