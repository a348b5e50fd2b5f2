// The real issuer app (createApp over createAppDeps) running in this Node process: served over node:http on
// 127.0.0.1 through a small node:http <-> fetch bridge, the CA core (ca-core.ts) on its in-memory storage
// with the test's clock, and a real D1 from Miniflare (in memory, migrations/ applied in order). No
// wrangler, no workerd for the app itself: a test can reach into `app`, `ca` and `config` directly.
import 'reflect-metadata';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { createApp } from '../../src/worker/app.js';
import { createCaCore, type CaCore } from '../../src/worker/ca/ca-core.js';
import { createMemoryCaStorage } from '../../src/worker/ca/ca-storage.js';
import { parseWorkerConfig, type WorkerConfig, type WorkerConfigEnv } from '../../src/worker/config.js';
import { createAppDeps } from '../../src/worker/wiring.js';

const MIGRATIONS_DIR = join(import.meta.dirname, '..', '..', 'migrations');

export interface InProcessIssuerOptions {
  trustDomain?: string;
  /** ms since the epoch; shared by the app and the CA. Default: Date.now */
  clock?: () => number;
  /** configuration vars over the defaults, as wrangler vars (strings), e.g. { X509_SVID_TTL: '10m' } */
  config?: Partial<WorkerConfigEnv>;
}

export interface InProcessIssuer {
  /** http://127.0.0.1:<port>, also the JWT issuer */
  url: string;
  app: ReturnType<typeof createApp>;
  ca: CaCore;
  config: WorkerConfig;
  adminToken: string;
  /** an admin API call (path under /admin/v1) with the admin token; the JSON body, or throws on non-2xx */
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

export async function startInProcessIssuer(options: InProcessIssuerOptions = {}): Promise<InProcessIssuer> {
  const clock = options.clock ?? Date.now;
  const mf = new Miniflare({ modules: true, script: 'export default {}', d1Databases: { DB: 'in-process-issuer' } });
  let server: ReturnType<typeof createServer> | undefined;
  try {
    const db = (await mf.getD1Database('DB')) as unknown as D1Database;
    await applyMigrations(db);

    // the app needs the URL (its JWT issuer), so it is made after the server listens
    const serving: { app?: ReturnType<typeof createApp> } = {};
    server = createServer((req, res) => void bridge(req, res, serving.app!));
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
    const ca = createCaCore({ storage: createMemoryCaStorage(), config, clock });
    const app = (serving.app = createApp(createAppDeps({ config, ca: () => ca, db, clock })));

    const s = server;
    return {
      url,
      app,
      ca,
      config,
      adminToken,
      async admin<T>(method: string, path: string, body?: unknown): Promise<T> {
        const res = await fetch(`${url}/admin/v1${path}`, {
          method,
          headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
        return (text ? JSON.parse(text) : undefined) as T;
      },
      async close() {
        await new Promise<void>((resolve) => s.close(() => resolve()));
        await mf.dispose();
      },
    };
  } catch (e) {
    server?.close();
    await mf.dispose();
    throw e;
  }
}

/** The SQL files of migrations/ in order, each as one batch (what wrangler d1 migrations apply does per file). */
async function applyMigrations(db: D1Database): Promise<void> {
  for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort()) {
    const sql = readFileSync(join(MIGRATIONS_DIR, file), 'utf8')
      .replaceAll('--> statement-breakpoint', '\n')
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('--'))
      .join('\n');
    // no statement in migrations/ has a ';' inside it (no triggers, no string literals with one)
    const statements = sql.split(';').map((s) => s.trim()).filter(Boolean);
    await db.batch(statements.map((s) => db.prepare(s)));
  }
}

/** node:http -> fetch Request -> the app -> fetch Response -> node:http. */
async function bridge(req: IncomingMessage, res: ServerResponse, app: ReturnType<typeof createApp>): Promise<void> {
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
    }
    const method = req.method ?? 'GET';
    const request = new Request(new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`), {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : Buffer.concat(chunks),
    });
    const response = await app.fetch(request);
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
}
