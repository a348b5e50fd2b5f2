/**
 * The scale run's meter: a Worker module in front of the bundled issuer (`./worker/index.js`, external to this
 * bundle) that hands the issuer metered bindings and changes nothing it does:
 * - `CA`: every RPC on a Durable Object stub is counted per object name and method, with its wall time;
 * - `DB`: every D1 statement's `meta` (rows read, rows written, duration) is summed; `raw()` and `exec()`
 *   carry no meta and are only counted;
 * - shards: with `/__scale/shards?n=N`, requests go to N copies of the issuer's bindings whose CA namespace maps
 *   the trust domain to `<trust domain>#shard-<k>` (N CA objects, each its own CA); a request's shard is its
 *   `?shard=k` query (covered by the agent proof like any query) or, for /attest, the join token's hash (shardOf);
 * - /attest requests get a CF-Connecting-IP of their own (simulated agents come from distinct nodes, so the
 *   per-address attestation limit of one address does not hold back the fleet's seeding).
 * Control endpoints under /__scale/ (counters, reset, shards, capture and captured: the D1 statements run, and
 * `do`: n sequential calls to one CA method, for the per-call cost timed from outside). Bench only: nothing here is deployed.
 */
// @ts-expect-error the bundled issuer, next to this module in the run's directory (esbuild leaves it external)
import worker, { TrustDomainCa } from './worker/index.js';
import { shardOf } from './shard-map.js';

export { TrustDomainCa };

interface Stub {
  [method: string]: (...args: unknown[]) => Promise<unknown>;
}
interface Namespace {
  idFromName(name: string): unknown;
  get(id: unknown): Stub;
}
interface D1Meta {
  rows_read?: number;
  rows_written?: number;
  duration?: number;
}
interface D1Result {
  meta?: D1Meta;
  results?: unknown[];
}
interface Statement {
  bind(...values: unknown[]): Statement;
  first(column?: string): Promise<unknown>;
  run(): Promise<D1Result>;
  all(): Promise<D1Result>;
  raw(options?: unknown): Promise<unknown[]>;
}
interface Database {
  prepare(sql: string): Statement;
  batch(statements: Statement[]): Promise<D1Result[]>;
  exec(sql: string): Promise<unknown>;
}
type Env = Record<string, unknown> & { CA: Namespace; DB: Database; TRUST_DOMAIN: string };
interface Handler {
  fetch(req: Request, env: Env, ctx: unknown): Promise<Response>;
}

interface DoCount {
  calls: number;
  ms: number;
}
const counters = {
  do: {} as Record<string, Record<string, DoCount>>,
  d1: { statements: 0, batches: 0, rowsRead: 0, rowsWritten: 0, durationMs: 0, unmetered: 0 },
  requests: {} as Record<string, number>,
};
function reset(): void {
  counters.do = {};
  counters.d1 = { statements: 0, batches: 0, rowsRead: 0, rowsWritten: 0, durationMs: 0, unmetered: 0 };
  counters.requests = {};
}

function meteredStub(stub: Stub, name: string): Stub {
  return new Proxy(stub, {
    get(target, method) {
      // an RPC stub answers any property with a method stub: only string names other than `then` are calls
      if (typeof method !== 'string' || method === 'then') return Reflect.get(target, method) as unknown;
      return async (...args: unknown[]) => {
        const byMethod = (counters.do[name] ??= {});
        const c = (byMethod[method] ??= { calls: 0, ms: 0 });
        c.calls++;
        const t0 = Date.now();
        try {
          return await target[method]!(...args);
        } finally {
          c.ms += Date.now() - t0;
        }
      };
    },
  });
}

/** The CA namespace of shard `shard` of `shards`: the trust domain's object name gets a suffix past one shard. */
function meteredNamespace(ns: Namespace, shard: number, shards: number): Namespace {
  const names = new Map<unknown, string>();
  return {
    idFromName(name) {
      const real = shards > 1 ? `${name}#shard-${shard}` : name;
      const id = ns.idFromName(real);
      names.set(id, real);
      return id;
    },
    get(id) {
      return meteredStub(ns.get(id), names.get(id) ?? 'unnamed');
    },
  };
}

function meter(r: D1Result): D1Result {
  counters.d1.statements++;
  counters.d1.rowsRead += r.meta?.rows_read ?? 0;
  counters.d1.rowsWritten += r.meta?.rows_written ?? 0;
  counters.d1.durationMs += r.meta?.duration ?? 0;
  return r;
}

const INNER = Symbol('inner');
const SQL = Symbol('sql');
type Metered = Statement & { [INNER]: Statement; [SQL]: { sql: string; params: unknown[] } };

/** with capture on, the statements the issuer runs (SQL and parameters, batches kept together), replayed by scale/sqlite-replay.ts */
let captured: { sql: string; params: unknown[] }[][] | undefined;
const capture = (group: Metered[]) => captured?.push(group.map((m) => m[SQL]));

function meteredStatement(s: Statement, sql: string, params: unknown[] = []): Metered {
  const self: Metered = {
    [INNER]: s,
    [SQL]: { sql, params },
    bind: (...values) => meteredStatement(s.bind(...values), sql, values),
    // first() has no meta: all() reads the same row(s) with it
    async first(column) {
      capture([self]);
      const { results } = meter(await s.all());
      const row = results?.[0] as Record<string, unknown> | undefined;
      if (!row) return null;
      return column === undefined ? row : (row[column] ?? null);
    },
    run: async () => (capture([self]), meter(await s.run())),
    all: async () => (capture([self]), meter(await s.all())),
    raw: async (options) => {
      capture([self]);
      counters.d1.unmetered++;
      return s.raw(options);
    },
  };
  return self;
}

function meteredDatabase(db: Database): Database {
  return {
    prepare: (sql) => meteredStatement(db.prepare(sql), sql),
    async batch(statements) {
      counters.d1.batches++;
      capture(statements as Metered[]);
      const results = await db.batch(statements.map((s) => (s as Metered)[INNER] ?? s));
      return results.map(meter);
    },
    exec(sql) {
      counters.d1.unmetered++;
      return db.exec(sql);
    },
  };
}

let shards = 1;
/** one metered env per (bindings, shard): the issuer keeps one app per env object (index.ts) */
const envs = new WeakMap<Env, Env[]>();
function envFor(env: Env, shard: number): Env {
  let list = envs.get(env);
  if (!list || list.length !== shards) envs.set(env, (list = []));
  return (list[shard] ??= { ...env, CA: meteredNamespace(env.CA, shard, shards), DB: meteredDatabase(env.DB) });
}

let addresses = 0;

async function control(url: URL, env: Env): Promise<Response> {
  if (url.pathname === '/__scale/counters') return Response.json(counters);
  if (url.pathname === '/__scale/reset') {
    reset();
    return Response.json({ ok: true });
  }
  if (url.pathname === '/__scale/shards') {
    shards = Math.max(1, Number(url.searchParams.get('n') ?? '1'));
    return Response.json({ shards });
  }
  if (url.pathname === '/__scale/capture') {
    captured = url.searchParams.get('on') === '1' ? [] : undefined;
    return Response.json({ ok: true });
  }
  if (url.pathname === '/__scale/captured') return Response.json(captured ?? []);
  if (url.pathname === '/__scale/do') {
    // n sequential calls of one CA method on shard 0, timed by the caller (workerd's clock stands still in computation)
    const n = Number(url.searchParams.get('n') ?? '0');
    const op = url.searchParams.get('op');
    const ca = env.CA.get(env.CA.idFromName(env.TRUST_DOMAIN));
    const args = await doArgs(op, env.TRUST_DOMAIN);
    for (let i = 0; i < n; i++) {
      const res = await ca[args.method]!(...args.params);
      const failed = Array.isArray(res) ? res.some((r) => !(r as { ok: boolean }).ok) : !(res as { ok: boolean }).ok;
      if (failed) return new Response(`CA refused ${op}: ${JSON.stringify(res).slice(0, 300)}`, { status: 500 });
    }
    return new Response('ok');
  }
  return new Response('not found', { status: 404 });
}

let spki: Promise<Uint8Array> | undefined;
async function doArgs(op: string | null, td: string): Promise<{ method: string; params: unknown[] }> {
  spki ??= crypto.subtle
    .generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
    .then(async (k) => new Uint8Array((await crypto.subtle.exportKey('spki', (k as { publicKey: Parameters<typeof crypto.subtle.exportKey>[1] }).publicKey)) as ArrayBuffer));
  const caller = `spiffe://${td}/spire/agent/scale/do-cost`;
  if (op === 'keys') return { method: 'getPublishedKeys', params: [] };
  if (op === 'x509') return { method: 'signX509Svids', params: [[{ spiffeId: `spiffe://${td}/scale/do`, publicKeySpki: await spki, dnsNames: [], ttlSeconds: 3600 }], caller] };
  if (op === 'jwt') return { method: 'signJwtSvids', params: [[{ spiffeId: `spiffe://${td}/scale/do`, audience: ['scale'], ttlSeconds: 300 }], caller] };
  if (op === 'crls') return { method: 'getCrls', params: [[]] };
  if (op === 'status') return { method: 'status', params: [] };
  throw new Error(`unknown op ${op}`);
}

export default {
  async fetch(req: Request, env: Env, ctx: unknown): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname.startsWith('/__scale/')) return control(url, env);
    counters.requests[url.pathname] = (counters.requests[url.pathname] ?? 0) + 1;
    let shard = Number(url.searchParams.get('shard') ?? '0') % shards || 0;
    let forward = req;
    if (url.pathname === '/agent/v1/attest' && req.method === 'POST') {
      const body = await req.text();
      const token = (JSON.parse(body) as { payload?: { token?: string } }).payload?.token ?? '';
      shard = shardOf(token, shards);
      const n = ++addresses;
      const headers = new Headers(req.headers);
      headers.set('cf-connecting-ip', `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`);
      forward = new Request(req.url, { method: 'POST', headers, body });
    }
    return (worker as unknown as Handler).fetch(forward, envFor(env, shard), ctx);
  },
};
