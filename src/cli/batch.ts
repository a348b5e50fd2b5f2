/**
 * Large entry batches: items are split into admin API calls of a bounded size, sent in order, with a
 * progress line on a terminal. A call that fails as a whole marks its chunk failed and the rest goes on,
 * except when the issuer cannot be reached or refuses the credential: then nothing else would work either.
 * @module
 */
import { WispError, type WispErrorData } from '../shared/errors.js';
import type { CliIo } from './context.js';

/** The admin API's bound on the items of one batch call (ADMIN_BATCH_MAX_ITEMS). */
export const ENTRY_BATCH_SIZE = 500;
/** Kept under the admin API's 1 MiB batch body limit, leaving room for the JSON around the items. */
export const ENTRY_BATCH_MAX_BYTES = 900 * 1024;

/** SPIRE's per-item result: `status.code` is `OK` or an error code. */
export interface ItemStatus {
  code: string;
  message: string;
}

export interface ItemResult<T> {
  status: ItemStatus;
  value?: T;
}

const FATAL_CODES = new Set(['ERR_UNAVAILABLE', 'ERR_UNAUTHENTICATED', 'ERR_PERMISSION_DENIED', 'ERR_NOT_FOUND', 'ERR_CONFIG_INVALID']);

/** Draws `label: done/total` on stderr when it is a terminal; returns a function that clears it. */
export function createProgress(io: CliIo, label: string, total: number): { update(done: number): void; done(): void } {
  if (!io.stderrIsTty || total <= 1) return { update: () => undefined, done: () => undefined };
  const draw = (n: number) => io.stderr(`\r${label}: ${n}/${total} (${Math.floor((n / total) * 100)}%)`);
  draw(0);
  return { update: draw, done: () => io.stderr('\r\x1b[K') };
}

/** Consecutive chunks of at most `size` items and (JSON-encoded) about `maxBytes`; one item always fits. */
export function splitChunks<T extends { item: unknown }>(items: readonly T[], size: number, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const itemBytes = JSON.stringify(it.item).length + 1;
    if (current.length > 0 && (current.length >= size || bytes + itemBytes > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(it);
    bytes += itemBytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Sends `items` (already validated ones; `local` holds per-index local failures) in chunks and returns one
 * result per input index, in input order.
 */
export async function sendInBatches<I, T>(options: {
  io: CliIo;
  label: string;
  items: readonly (I | WispErrorData)[];
  isLocalFailure: (item: I | WispErrorData) => item is WispErrorData;
  send: (chunk: I[]) => Promise<ItemResult<T>[]>;
  batchSize?: number;
  maxBytes?: number;
}): Promise<ItemResult<T>[]> {
  const { io, items, send } = options;
  const batchSize = options.batchSize ?? ENTRY_BATCH_SIZE;
  const maxBytes = options.maxBytes ?? ENTRY_BATCH_MAX_BYTES;
  const results: ItemResult<T>[] = new Array(items.length);
  const pending: { index: number; item: I }[] = [];
  items.forEach((item, index) => {
    if (options.isLocalFailure(item)) results[index] = { status: { code: item.code, message: item.message } };
    else pending.push({ index, item });
  });
  const progress = createProgress(io, options.label, pending.length);
  let done = 0;
  try {
    for (const chunk of splitChunks(pending, batchSize, maxBytes)) {
      let chunkResults: ItemResult<T>[];
      try {
        chunkResults = await send(chunk.map((p) => p.item));
        if (chunkResults.length !== chunk.length) {
          throw new WispError('ERR_INTERNAL', `the issuer answered ${chunkResults.length} results for a batch of ${chunk.length}`);
        }
      } catch (e) {
        if (!(e instanceof WispError) || FATAL_CODES.has(e.code)) throw e;
        chunkResults = chunk.map(() => ({ status: { code: e.code, message: e.message } }));
      }
      chunk.forEach((p, i) => (results[p.index] = chunkResults[i]!));
      done += chunk.length;
      progress.update(done);
    }
  } finally {
    progress.done();
  }
  return results;
}

/** The one stderr line that sums up failed results, with the first failure's code (undefined when none failed). */
export function summarizeFailures(results: readonly ItemResult<unknown>[], verb: string): WispError | undefined {
  const failed = results.filter((r) => r.status.code !== 'OK');
  if (failed.length === 0) return undefined;
  const first = results.findIndex((r) => r.status.code !== 'OK');
  const firstStatus = results[first]!.status;
  return new WispError(
    firstStatus.code as WispErrorData['code'],
    `failed to ${verb} ${failed.length} of ${results.length} entr${results.length === 1 ? 'y' : 'ies'} (first: #${first + 1}: ${firstStatus.code}: ${firstStatus.message})`,
  );
}
