/**
 * The controller's view of the issuer's registry over the admin API (src/node/admin-client.ts): the entries
 * and federation relationships it reads and writes, in the admin API's batch shapes, and the admin
 * credential (a token file, re-read on every call so a rotated token is picked up; or an admin JWT-SVID
 * from the Workload API, fetched again shortly before it expires).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { decodeJwt } from 'jose';
import { createAdminClient, type AdminClient } from '../node/admin-client.js';
import { fetchAdminJwtSvid } from '../node/workload-api/admin-jwt.js';
import { WispError } from '../shared/errors.js';
import type { Entry } from '../shared/registry/entry.js';
import type { FederationRelationship } from '../shared/federation/relationship.js';
import type { AdminCredentialConfig } from './config.js';

/** The admin API's limits (src/worker/routes/admin/params.ts): items per batch, entries per page. */
export const BATCH_MAX_ITEMS = 500;
export const PAGE_SIZE = 1000;
/** A JWT-SVID is fetched again this long before it expires. */
const JWT_REFRESH_MARGIN_SECONDS = 30;

export interface ItemStatus {
  code: string;
  message: string;
}

export interface Registry {
  listEntries(): Promise<Entry[]>;
  /** batch writes: `proceed` is asked before each batch; when it says no, the statuses stop short */
  createEntries(inputs: Record<string, unknown>[], proceed?: () => boolean): Promise<ItemStatus[]>;
  updateEntries(inputs: Record<string, unknown>[], proceed?: () => boolean): Promise<ItemStatus[]>;
  deleteEntries(ids: string[], proceed?: () => boolean): Promise<ItemStatus[]>;
  listRelationships(): Promise<FederationRelationship[]>;
  putRelationship(input: Record<string, unknown>, exists: boolean): Promise<void>;
  deleteRelationship(trustDomain: string): Promise<void>;
}

/** The bearer credential source for the admin client. */
export function adminCredential(c: AdminCredentialConfig, timeoutMs: number): () => Promise<string> {
  if (c.kind === 'token-file') {
    return async () => {
      let token: string;
      try {
        token = (await readFile(c.path, 'utf8')).trim();
      } catch (e) {
        throw new WispError('ERR_UNAUTHENTICATED', `cannot read the admin token file ${c.path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (token === '') throw new WispError('ERR_UNAUTHENTICATED', `the admin token file ${c.path} is empty`);
      return token;
    };
  }
  let cached: { token: string; exp: number } | undefined;
  return async () => {
    const now = Date.now() / 1000;
    if (cached && cached.exp - JWT_REFRESH_MARGIN_SECONDS > now) return cached.token;
    const token = await fetchAdminJwtSvid(`unix://${c.socket}`, c.audience, timeoutMs);
    const exp = decodeJwt(token).exp ?? now;
    cached = { token, exp };
    return token;
  };
}

/** Runs `call` on `items` in batches of BATCH_MAX_ITEMS while `proceed()`; the statuses in item order. */
async function inBatches<T>(items: T[], call: (batch: T[]) => Promise<ItemStatus[]>, proceed: () => boolean = () => true): Promise<ItemStatus[]> {
  const out: ItemStatus[] = [];
  for (let i = 0; i < items.length && proceed(); i += BATCH_MAX_ITEMS) out.push(...(await call(items.slice(i, i + BATCH_MAX_ITEMS))));
  return out;
}

type BatchAnswer = { results: { status: ItemStatus }[] };

export function createRegistry(client: AdminClient): Registry {
  const batch = (path: string, field: string) => async (items: unknown[]) =>
    (await client.request<BatchAnswer>('POST', path, { body: { [field]: items } })).results.map((r) => r.status);
  return {
    async listEntries() {
      const all: Entry[] = [];
      let pageToken: string | undefined;
      do {
        const page = await client.request<{ entries: Entry[]; nextPageToken?: string }>('GET', '/admin/v1/entries', { query: { pageSize: PAGE_SIZE, pageToken } });
        all.push(...page.entries);
        pageToken = page.nextPageToken;
      } while (pageToken);
      return all;
    },
    createEntries: (inputs, proceed) => inBatches(inputs, batch('/admin/v1/entries/batch-create', 'entries'), proceed),
    updateEntries: (inputs, proceed) => inBatches(inputs, batch('/admin/v1/entries/batch-update', 'entries'), proceed),
    deleteEntries: (ids, proceed) => inBatches(ids, batch('/admin/v1/entries/batch-delete', 'ids'), proceed),
    async listRelationships() {
      return (await client.request<{ relationships: FederationRelationship[] }>('GET', '/admin/v1/federation')).relationships;
    },
    async putRelationship(input, exists) {
      const td = encodeURIComponent(String(input.trustDomain));
      if (exists) await client.request('PUT', `/admin/v1/federation/${td}`, { body: input });
      else await client.request('POST', '/admin/v1/federation', { body: input });
    },
    async deleteRelationship(trustDomain) {
      await client.request('DELETE', `/admin/v1/federation/${encodeURIComponent(trustDomain)}`);
    },
  };
}

export function createControllerAdminClient(serverUrl: string, credential: AdminCredentialConfig, timeoutSeconds: number): AdminClient {
  return createAdminClient({ serverUrl, credential: adminCredential(credential, timeoutSeconds * 1000), timeoutMs: timeoutSeconds * 1000 });
}
