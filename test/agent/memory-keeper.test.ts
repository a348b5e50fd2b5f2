/**
 * The memory keeper (src/agent/memory.ts): gives memory back only after the RSS has grown and only in an
 * idle second; a full GC only when the growth or the heap's slack is large. Real timers and the real event
 * loop utilization; the RSS readings are supplied so each case is exact. The addon's malloc_trim is called for real.
 */
import { describe, expect, it } from 'vitest';
import { runMemoryKeeper, v8FullGc } from '../../src/agent/memory.js';
import { trimMalloc } from '../../src/agent/workload-api/peer.js';

const MB = 1024 * 1024;

type Calls = { trim: number; gc: number };

/** Runs the keeper at a 20 ms interval for `ms` (or while `during` runs) with `read` as its memory reading; counts its calls. */
async function keep(ms: number, read: () => { rss: number; heapTotal: number; heapUsed: number }, during?: (calls: Calls) => Promise<void>) {
  const calls = { trim: 0, gc: 0 };
  const controller = new AbortController();
  const done = runMemoryKeeper({ trim: () => (calls.trim++, true), gc: () => void calls.gc++, intervalMs: 20, memory: read }, controller.signal);
  await (during ? during(calls) : new Promise((r) => setTimeout(r, ms)));
  controller.abort();
  await done;
  return calls;
}

describe('runMemoryKeeper', () => {
  it('does nothing while the RSS does not grow', async () => {
    const calls = await keep(200, () => ({ rss: 80 * MB, heapTotal: 20 * MB, heapUsed: 19 * MB }));
    expect(calls).toEqual({ trim: 0, gc: 0 });
  });

  it('trims once after a small growth, and runs no GC when the heap has little slack', async () => {
    let rss = 80 * MB;
    const calls = await keep(0, () => ({ rss, heapTotal: 20 * MB, heapUsed: 19 * MB }), async () => {
      await new Promise((r) => setTimeout(r, 50));
      rss += 3 * MB; // grows; the pass's own reading afterwards is the new baseline
      await new Promise((r) => setTimeout(r, 200));
    });
    expect(calls).toEqual({ trim: 1, gc: 0 });
  });

  it('runs a full GC too after a large growth or when the heap has large slack', async () => {
    let rss = 80 * MB;
    const big = await keep(0, () => ({ rss, heapTotal: 20 * MB, heapUsed: 19 * MB }), async () => {
      await new Promise((r) => setTimeout(r, 50));
      rss += 12 * MB;
      await new Promise((r) => setTimeout(r, 200));
    });
    expect(big).toEqual({ trim: 1, gc: 1 });
    let rss2 = 80 * MB;
    const slack = await keep(0, () => ({ rss: rss2, heapTotal: 40 * MB, heapUsed: 19 * MB }), async () => {
      await new Promise((r) => setTimeout(r, 50));
      rss2 += 3 * MB;
      await new Promise((r) => setTimeout(r, 200));
    });
    expect(slack).toEqual({ trim: 1, gc: 1 });
  });

  it('leaves a busy event loop alone, and acts in the first idle interval after it', async () => {
    let rss = 80 * MB;
    let whileBusy: Calls | undefined;
    const calls = await keep(0, () => ({ rss, heapTotal: 20 * MB, heapUsed: 19 * MB }), async (c) => {
      rss += 12 * MB;
      // busy: the loop runs ~95% of each 20 ms for 300 ms, yielding only so that the keeper's timer can fire
      const until = Date.now() + 300;
      while (Date.now() < until) {
        const spin = Date.now() + 19;
        while (Date.now() < spin);
        await new Promise((r) => setImmediate(r));
      }
      whileBusy = { ...c };
      await new Promise((r) => setTimeout(r, 150));
    });
    expect(whileBusy).toEqual({ trim: 0, gc: 0 });
    expect(calls).toEqual({ trim: 1, gc: 1 });
  });

  it('leaves an idle loop alone while workloads call (activity moves), and acts in the first interval without calls', async () => {
    let rss = 80 * MB;
    let activity = 0;
    const controller = new AbortController();
    const calls = { trim: 0, gc: 0 };
    const done = runMemoryKeeper(
      { trim: () => (calls.trim++, true), gc: () => void calls.gc++, intervalMs: 20, memory: () => ({ rss, heapTotal: 20 * MB, heapUsed: 19 * MB }), activity: () => activity },
      controller.signal,
    );
    // a light load: one call every 5 ms leaves the loop idle, but no interval passes without a call
    rss += 12 * MB;
    const until = Date.now() + 300;
    while (Date.now() < until) {
      activity++;
      await new Promise((r) => setTimeout(r, 5));
    }
    const whileCalled = { ...calls };
    await new Promise((r) => setTimeout(r, 150));
    controller.abort();
    await done;
    expect(whileCalled).toEqual({ trim: 0, gc: 0 });
    expect(calls).toEqual({ trim: 1, gc: 1 });
  });

  it('runs a pass with a GC once connections closed since the last pass, though the RSS did not grow, and none for a few', async () => {
    let rss = 80 * MB;
    let open = 0;
    const controller = new AbortController();
    const calls = { trim: 0, gc: 0 };
    const passes: number[] = [];
    const done = runMemoryKeeper(
      {
        trim: () => (calls.trim++, true),
        gc: () => void calls.gc++,
        intervalMs: 20,
        memory: () => ({ rss, heapTotal: 20 * MB, heapUsed: 19 * MB }),
        connections: () => open,
        onPass: (p) => passes.push(p.rssBefore),
      },
      controller.signal,
    );
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // 20 connections open and their memory grows the RSS: one pass, taken with them still open
    open = 20;
    rss += 3 * MB;
    await wait(100);
    const whileOpen = { ...calls };
    // they close; what they free does not show as growth (the RSS reads the same)
    open = 0;
    await wait(100);
    const afterClose = { ...calls };
    // three connections come and go: not worth a pass
    open = 3;
    await wait(60);
    open = 0;
    await wait(100);
    controller.abort();
    await done;
    expect(whileOpen).toEqual({ trim: 1, gc: 0 });
    expect(afterClose).toEqual({ trim: 2, gc: 1 });
    expect(calls).toEqual({ trim: 2, gc: 1 });
    expect(passes).toEqual([83 * MB, 83 * MB]);
  });

  it('keeps collecting when trim throws (no addon), and stops calling it', async () => {
    let rss = 80 * MB;
    let trims = 0;
    let gcs = 0;
    const controller = new AbortController();
    const done = runMemoryKeeper({ trim: () => { trims++; throw new Error('no addon'); }, gc: () => void gcs++, intervalMs: 20, memory: () => ({ rss, heapTotal: 20 * MB, heapUsed: 19 * MB }) }, controller.signal);
    for (let i = 0; i < 3; i++) {
      rss += 12 * MB;
      await new Promise((r) => setTimeout(r, 80));
    }
    controller.abort();
    await done;
    expect({ trims, gcs }).toEqual({ trims: 1, gcs: 3 });
  });
});

describe('the real trim and GC', () => {
  it('malloc_trim through the addon and V8 memory-reducing GC run, and a GC frees an unreachable heap', async () => {
    expect(typeof trimMalloc()).toBe('boolean');
    const gc = v8FullGc();
    const holder: { garbage?: number[][] } = { garbage: Array.from({ length: 2000 }, () => Array.from({ length: 1000 }, (_, i) => i)) };
    const withGarbage = process.memoryUsage().heapUsed;
    delete holder.garbage;
    gc();
    expect(process.memoryUsage().heapUsed).toBeLessThan(withGarbage - 8 * MB);
  });
});
