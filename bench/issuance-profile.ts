/**
 * A development driver for the issuance section only (not part of `npm run bench`): starts the issuer in
 * workerd, then loops the X.509 / JWT batch rates beside the mandatory crypto, and with `--profile <file>`
 * takes a CPU profile of the Worker and the CA DO (one isolate) over the DevTools protocol while under load.
 * Usage: tsx bench/issuance-profile.ts [--rounds 3] [--profile /tmp/issue.cpuprofile] [--jwt]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attestAgent, b64, makeCsr, startIssuer, type Issuer } from './stack.js';
import { cpuTicks, createEntries, entry } from './fleet.js';
import { execFileSync } from 'node:child_process';
import { median, pool, round } from './stats.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const ROUNDS = Number(arg('--rounds') ?? 3);
const PROFILE = arg('--profile');
const INSPECTOR_PORT = 9400 + Math.floor(Math.random() * 500);
const IN_FLIGHT = Number(arg('--in-flight') ?? 4);

let workerd = 0;
/** workerd CPU µs per operation, beside the wall figures (robust to a busy machine) */
const cpuPerOp: Record<string, number[]> = {};
const cpu = (key: string, ticks: number, ops: number) => (cpuPerOp[key] ??= []).push((ticks * 10_000) / ops);

async function perOpMs(issuer: Issuer, path: string, n: number): Promise<number> {
  const empty = await issuer.limits(path, 0);
  const w0 = cpuTicks(workerd);
  const full = await issuer.limits(path, n);
  cpu(path, cpuTicks(workerd) - w0, n);
  return Math.max(1e-6, (full - empty) / n);
}

/** DevTools sessions on workerd's isolates (the Worker + CA DO; D1; Miniflare's entry worker) */
async function inspectors(port: number): Promise<{ name: string; send: (method: string, params?: unknown) => Promise<Record<string, unknown>> }[]> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { id: string; title: string; webSocketDebuggerUrl: string }[];
  const wanted = list.filter((t) => /core:user:wisp|d1:db$|core:entry/.test(t.title));
  return Promise.all(wanted.map(async (target) => {
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
    let id = 0;
    const waiting = new Map<number, (v: Record<string, unknown>) => void>();
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (msg.id && waiting.has(msg.id)) { waiting.get(msg.id)!(msg.result ?? msg.error); waiting.delete(msg.id); }
    };
    const send = (method: string, params?: unknown) => new Promise<Record<string, unknown>>((res) => { const n = ++id; waiting.set(n, res); ws.send(JSON.stringify({ id: n, method, params })); });
    return { name: target.title.split(' ').pop()!.replace(/[^\w]+/g, '_'), send };
  }));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wisp-issue-'));
  const issuer = await startIssuer(dir, PROFILE ? { inspectorPort: INSPECTOR_PORT } : {});
  try {
    workerd = Number(execFileSync('pgrep', ['-n', '-P', String(process.pid), 'workerd'], { encoding: 'utf8' }).trim());
    const util: string[] = [];
    const agent = await attestAgent(issuer, { direct: !process.argv.includes('--entry') });
    const created = await createEntries(issuer, Array.from({ length: 500 }, (_, i) => entry(`/bench/x509/${i}`, agent.agentId, `uid:${200000 + i}`)));
    const csrs = await Promise.all(Array.from({ length: 100 }, () => makeCsr()));
    const x509Body = { requests: created.slice(0, 100).map((id, i) => ({ entryId: id, csr: b64(csrs[i]!.der) })) };
    const jwt500 = { requests: created.slice(0, 500).map((id, i) => ({ entryId: id, audience: [`aud-${i}`] })) };
    const jwt100 = { requests: created.slice(0, 100).map((id, i) => ({ entryId: id, audience: [`aud-${i}`] })) };
    const rate = async (path: string, body: { readonly requests: readonly unknown[]; [k: string]: unknown }, n: number) => {
      const reqs = await Promise.all(Array.from({ length: n }, () => agent.prepare(path, body)));
      const t0 = performance.now();
      const w0 = cpuTicks(workerd);
      const c0 = process.cpuUsage();
      await pool(n, IN_FLIGHT, async (i) => {
        const res = await reqs[i]!();
        if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      });
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      cpu(`${path.slice(10)}×${body.requests.length}`, cpuTicks(workerd) - w0, n * body.requests.length);
      util.push(`${path.slice(10)}×${body.requests.length}: workerd ${Math.round(((cpuTicks(workerd) - w0) * 10 * 100) / ms)}% client ${Math.round((c.user + c.system) / 10 / ms)}%`);
      return (n * body.requests.length) / (ms / 1000);
    };
    const sync0 = (await agent.call('/agent/v1/sync', {})) as { revision: string; bundle: { spiffe_sequence: number } };
    const sync = { revision: sync0.revision, bundleSequence: sync0.bundle.spiffe_sequence };
    await perOpMs(issuer, '/sign', 500);
    await perOpMs(issuer, '/verify', 500);
    await rate('/agent/v1/x509-svids', x509Body, 8);
    await rate('/agent/v1/jwt-svids', jwt100, 8);
    await rate('/agent/v1/jwt-svids', jwt500, 4);
    if (PROFILE) {
      const sessions = await inspectors(INSPECTOR_PORT);
      for (const { send } of sessions) {
        await send('Profiler.enable');
        await send('Profiler.setSamplingInterval', { interval: 100 });
      }
      for (const [name, path, n] of [['do-x509', '/ca-batch', 200], ['do-jwt', '/ca-jwt-batch', 300]] as const) {
        for (const { send } of sessions) await send('Profiler.start');
        await issuer.limits(path, n);
        for (const s of sessions) {
          const { profile } = await s.send('Profiler.stop');
          writeFileSync(`${PROFILE}.${name}.${s.name}.cpuprofile`, JSON.stringify(profile));
        }
      }
      for (const [name, path, body, n] of [['x509', '/agent/v1/x509-svids', x509Body, 60], ['jwt100', '/agent/v1/jwt-svids', jwt100, 150], ['sync', '/agent/v1/sync', { ...sync, requests: [0] }, 800], ['jwt1', '/agent/v1/jwt-svids', { requests: jwt100.requests.slice(0, 1) }, 1000]] as const) {
        for (const { send } of sessions) await send('Profiler.start');
        await rate(path, body, n);
        for (const s of sessions) {
          const { profile } = await s.send('Profiler.stop');
          writeFileSync(`${PROFILE}.${name}.${s.name}.cpuprofile`, JSON.stringify(profile));
          console.log(`wrote ${PROFILE}.${name}.${s.name}.cpuprofile`);
        }
      }
    }
    const soak = arg('--soak');
    if (soak) {
      // one kind of load for --seconds (for perf record -p <workerd>)
      const body = soak === 'x509' ? x509Body : soak === 'jwt100' ? jwt100 : jwt500;
      const path = soak === 'x509' ? '/agent/v1/x509-svids' : '/agent/v1/jwt-svids';
      console.log(`soak ${soak} workerd pid ${workerd}`);
      const until = Date.now() + Number(arg('--seconds') ?? 10) * 1000;
      while (Date.now() < until) await rate(path, body, 20);
      for (const [k, v] of Object.entries(cpuPerOp)) if (k.includes('×')) console.log(`  cpu ${k}: ${round(median(v), 1)} µs/op`);
      return;
    }
    const r = { x: [] as number[], j100: [] as number[], j500: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      const signMs = await perOpMs(issuer, '/sign', 3000);
      const verifyMs = await perOpMs(issuer, '/verify', 1500);
      const x = await rate('/agent/v1/x509-svids', x509Body, 40);
      const j100 = await rate('/agent/v1/jwt-svids', jwt100, 80);
      const j500 = await rate('/agent/v1/jwt-svids', jwt500, 16);
      await perOpMs(issuer, '/ca-jwt-batch', 100);
      await perOpMs(issuer, '/ca-batch', 30);
      await perOpMs(issuer, '/mint', 3000);
      await perOpMs(issuer, '/ca-rpc-empty', 2000);
      await perOpMs(issuer, '/ca-rpc-refused', 500);
      if (process.argv.includes('--fixed')) {
        await rate('/agent/v1/jwt-svids', { requests: jwt100.requests.slice(0, 1) }, 600);
        await rate('/agent/v1/x509-svids', { requests: x509Body.requests.slice(0, 1) }, 400);
        {
          const w0 = cpuTicks(workerd);
          await pool(2000, IN_FLIGHT, async () => (await fetch(`${issuer.directUrl}/healthz`)).arrayBuffer());
          cpu('healthz', cpuTicks(workerd) - w0, 2000);
        }
        await rate('/agent/v1/sync', { revision: sync.revision, bundleSequence: sync.bundleSequence, requests: [0] }, 600);
      }
      r.x.push(x / (1000 / (signMs + verifyMs)));
      r.j100.push(j100 / (1000 / signMs));
      r.j500.push(j500 / (1000 / signMs));
      console.log(`  ${util.splice(0).join('; ')}`);
      console.log(`round ${i + 1}: sign ${Math.round(1000 / signMs)}/s verify ${Math.round(1000 / verifyMs)}/s x509 ${Math.round(x)}/s (${round(r.x.at(-1)!)}) jwt100 ${Math.round(j100)}/s (${round(r.j100.at(-1)!)}) jwt500 ${Math.round(j500)}/s (${round(r.j500.at(-1)!)})`);
    }
    console.log(`median ratios: x509 ${round(median(r.x))}, jwt100 ${round(median(r.j100))}, jwt500 ${round(median(r.j500))}`);
    for (const [k, v] of Object.entries(cpuPerOp)) console.log(`  cpu ${k}: ${round(median(v), 1)} µs/op (${v.map((x) => Math.round(x)).join(' ')})`);
    for (const p of ['/issue', '/parse-csr', '/sha1', '/mint']) console.log(`  ${p}: ${round((await perOpMs(issuer, p, 2000)) * 1000, 1)} µs`);
  } finally {
    await issuer.stop();
    if (PROFILE) console.log(`bundle kept in ${dir}/worker/index.js (the profile's line numbers)`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
