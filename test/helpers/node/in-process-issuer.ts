// The real issuer app (createApp over createAppDeps) running in this Node process: served over node:http on
// 127.0.0.1 through a small node:http <-> fetch bridge, the CA core (ca-core.ts) on its in-memory storage
// with the test's clock, and a real D1 from Miniflare (in memory, migrations/ applied in order). No
// wrangler, no workerd for the app itself: a test can reach into `app`, `deps`, `ca` and `config` directly.
// The bridge is also the test's view of the network (`transport`): it can cut every request at the socket,
// hold requests back, and records what reached the issuer; the issuer code is untouched by it.
import 'reflect-metadata';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { adminCall } from '../../../scripts/local-stack.js';
import { createApp } from '../../../src/worker/app.js';
import { createCaCore, type CaCore } from '../../../src/worker/ca/ca-core.js';
import { createMemoryCaStorage } from '../../../src/worker/ca/ca-storage.js';
import { parseWorkerConfig, type WorkerConfig, type WorkerConfigEnv } from '../../../src/worker/config.js';
import type { AppDeps } from '../../../src/worker/deps.js';
import { createAppDeps } from '../../../src/worker/wiring.js';

type MemoryCaStorage = ReturnType<typeof createMemoryCaStorage>;

const MIGRATIONS_DIR = join(import.meta.dirname, '..', '..', '..', 'migrations');

/** One request as it reached the issuer over the bridge. */
export interface IssuerCall {
  method: string;
  /** path and query, e.g. /agent/v1/sync */
  path: string;
  /** the body parsed as JSON, or undefined when empty (or not JSON) */
  body: unknown;
  authorization?: string;
  /** the app's answer; undefined while it is being handled */
  status?: number;
}

/** What the test controls and sees of the network between its clients and the issuer. */
export interface IssuerTransport {
  /** true: every request is cut at the socket, as an unreachable issuer would (nothing reaches the app) */
  down: boolean;
  /** real ms a request waits before it reaches the app (a slow issuer); by path. Default: none */
  delayMs: (path: string) => number;
  /** every request that reached the app, in arrival order */
  calls: IssuerCall[];
}

export function createTransport(): IssuerTransport {
  return { down: false, delayMs: () => 0, calls: [] };
}

/**
 * Miniflare D1s for the issuers one test file starts (a Miniflare takes about half a second to start): an
 * issuer leases one, emptied and migrated again, and gives it back on close. Dispose it after the file.
 */
export interface D1Pool {
  lease(): Promise<{ db: D1Database; release(): void }>;
  dispose(): Promise<void>;
}

export function createD1Pool(): D1Pool {
  const all: Miniflare[] = [];
  const free: Miniflare[] = [];
  return {
    async lease() {
      let mf = free.pop();
      if (!mf) {
        // Miniflare 5 takes { workers: [{ config }] }; its own converter keeps the v4 shape readable here
        mf = new Miniflare(convertV4MiniflareOptions({ modules: true, script: 'export default {}', d1Databases: { DB: 'in-process-issuer' } }));
        all.push(mf);
      }
      const leased = mf;
      try {
        const db = (await leased.getD1Database('DB')) as unknown as D1Database;
        await migrateFresh(db);
        return { db, release: () => void free.push(leased) };
      } catch (e) {
        free.push(leased);
        throw e;
      }
    },
    async dispose() {
      free.length = 0;
      await Promise.all(all.splice(0).map((mf) => mf.dispose()));
    },
  };
}

export interface InProcessIssuerOptions {
  trustDomain?: string;
  /** ms since the epoch; shared by the app and the CA. Default: Date.now */
  clock?: () => number;
  /** configuration vars over the defaults, as wrangler vars (strings), e.g. { X509_SVID_TTL: '10m' } */
  config?: Partial<WorkerConfigEnv>;
  /** where the D1 comes from; default: a Miniflare of its own, disposed on close */
  d1?: D1Pool;
  /** default: a new one (createTransport) */
  transport?: IssuerTransport;
  /**
   * HTTP upgrade requests (the agents' notification WebSocket), which the node:http bridge does not carry to
   * the app: a test answers them itself (e.g. passes them through to a fake notifier). Default: refused.
   */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export interface InProcessIssuer {
  /** http://127.0.0.1:<port>, also the JWT issuer */
  url: string;
  app: ReturnType<typeof createApp>;
  deps: AppDeps;
  ca: CaCore;
  /** the CA core's storage: `alarm` is when the CA asked to be woken next (its rotation check) */
  caStorage: MemoryCaStorage;
  config: WorkerConfig;
  adminToken: string;
  transport: IssuerTransport;
  /** an admin API call (path under /admin/v1) with the admin token; the JSON body, or throws on non-2xx */
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

export async function startInProcessIssuer(options: InProcessIssuerOptions = {}): Promise<InProcessIssuer> {
  const clock = options.clock ?? Date.now;
  const transport = options.transport ?? createTransport();
  const pool = options.d1 ?? createD1Pool();
  const owned = options.d1 === undefined;
  let server: ReturnType<typeof createServer> | undefined;
  let lease: Awaited<ReturnType<D1Pool['lease']>> | undefined;
  const cleanUp = async () => {
    lease?.release();
    if (owned) await pool.dispose();
  };
  try {
    lease = await pool.lease();
    const { db } = lease;

    // the app needs the URL (its JWT issuer), so it is made after the server listens
    const serving: { app?: ReturnType<typeof createApp> } = {};
    server = createServer((req, res) => void bridge(req, res, serving.app!, transport));
    server.on('upgrade', options.onUpgrade ?? ((_req: IncomingMessage, socket: Duplex) => socket.destroy()));
    await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const adminToken = `admin-${crypto.randomUUID()}-${crypto.randomUUID()}`;
    const env: WorkerConfigEnv = {
      TRUST_DOMAIN: options.trustDomain ?? 'example.org',
      JWT_ISSUER: url,
      ADMIN_TOKEN: adminToken,
      KEY_ENCRYPTION_SECRET: `kek-${crypto.randomUUID()}-${crypto.randomUUID()}`,
      ...options.config,
    };
    const config = parseWorkerConfig(env);
    const caStorage = createMemoryCaStorage();
    const ca = createCaCore({ storage: caStorage, config, clock });
    const deps = createAppDeps({ config, ca: () => ca, db, clock });
    const app = (serving.app = createApp(deps));

    const s = server;
    return {
      url,
      app,
      deps,
      ca,
      caStorage,
      config,
      adminToken,
      transport,
      admin: (method, path, body) => adminCall({ url, adminToken }, method, path, body),
      async close() {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
        await cleanUp();
      },
    };
  } catch (e) {
    server?.close();
    await cleanUp();
    throw e;
  }
}

/**
 * Applies migrations/ to a new database as wrangler d1 migrations apply would, in one D1 batch. A database
 * migrated before is emptied instead (cheaper than dropping and creating every table): every row deleted,
 * then the migrations' seed rows (their INSERTs) written again.
 */
async function migrateFresh(db: D1Database): Promise<void> {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY rowid DESC")
    .all<{ name: string }>();
  const statements =
    results.length === 0
      ? migrationStatements()
      : [...results.map((t) => `DELETE FROM "${t.name}"`), ...migrationStatements().filter((s) => /^INSERT\b/i.test(s))];
  await db.batch(statements.map((s) => db.prepare(s)));
}

let migrations: string[] | undefined;

/** The statements of migrations/*.sql in order. */
function migrationStatements(): string[] {
  migrations ??= readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .flatMap((file) => {
      const sql = readFileSync(join(MIGRATIONS_DIR, file), 'utf8')
        .replaceAll('--> statement-breakpoint', '\n')
        .split('\n')
        .filter((line) => !line.trimStart().startsWith('--'))
        .join('\n');
      // no statement in migrations/ has a ';' inside it (no triggers, no string literals with one)
      return sql.split(';').map((s) => s.trim()).filter(Boolean);
    });
  return migrations;
}

/** node:http -> the transport -> fetch Request -> the app -> fetch Response -> node:http. */
async function bridge(req: IncomingMessage, res: ServerResponse, app: ReturnType<typeof createApp>, transport: IssuerTransport): Promise<void> {
  if (transport.down) {
    req.socket.destroy();
    return;
  }
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const delay = transport.delayMs(path);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (transport.down) {
      req.socket.destroy();
      return;
    }
    const call: IssuerCall = { method, path, body: jsonOrUndefined(raw), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
    transport.calls.push(call);

    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
    }
    const request = new Request(new URL(path, `http://${req.headers.host ?? '127.0.0.1'}`), {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : raw,
    });
    const response = await app.fetch(request);
    call.status = response.status;
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
}

function jsonOrUndefined(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
