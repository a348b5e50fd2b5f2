// A small process that starts the processes bench/startup.ts times, so that their start is not measured from the
// bench's own process. Linux's fork() copies the parent's page tables, so a spawn costs more the larger the
// parent: measured here, `node -e 0` took 33 ms from a 50 MB parent, 51 ms from a 580 MB one and 91 ms from a
// 2.2 GB one, and the bench process holds Miniflare and 100,000 entries' worth of state by then. A user starts
// `wisp` and `wisp-agent` from a shell or systemd, which are small. Plain JS (no tsx), only node built-ins and
// grpc-js, loaded before anything is timed. Driven over IPC by bench/startup.ts (`startLauncher`):
//   { id, kind: 'exit', args, env }             → { id, ms }: spawn `node …args` and time it until it exits 0
//   { id, kind: 'firstSvid', args, socketPath }  → { id, ms }: spawn it and time it until a FetchX509SVID on a new
//                                                  connection to socketPath answers; the process keeps running
//   { id, kind: 'stop' }                         → { id, ms: 0 }: SIGTERM to the running process, once it exited
// Failures answer { id, error }.
import { spawn } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { existsSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import grpc from '@grpc/grpc-js';

const identity = (b) => b;
const FETCH_X509 = { path: '/SpiffeWorkloadAPI/FetchX509SVID', requestStream: false, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
const Client = grpc.makeGenericClientConstructor({ fetch: FETCH_X509 }, 'Launcher');

/** One FetchX509SVID on a new connection: resolves with its first response, rejects on an error status. */
function firstResponse(socketPath) {
  const client = new Client(`unix:${socketPath}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  return new Promise((resolve, reject) => {
    const call = client.fetch(Buffer.alloc(0), md);
    call.on('data', () => {
      call.cancel();
      resolve();
    });
    call.on('error', (err) => {
      if (err.code !== grpc.status.CANCELLED) reject(err);
    });
  }).finally(() => client.close());
}

let running;

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function handle(msg) {
  if (msg.kind === 'exit') {
    const t0 = performance.now();
    const child = spawn(process.execPath, msg.args, { cwd: msg.cwd, env: msg.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d.toString()));
    const code = await new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) throw new Error(`node ${msg.args.join(' ')} exited ${code}: ${err.slice(-2000)}`);
    return performance.now() - t0;
  }
  if (msg.kind === 'firstSvid') {
    rmSync(msg.socketPath, { force: true });
    const t0 = performance.now();
    const child = spawn(process.execPath, msg.args, { cwd: msg.cwd, env: msg.env, stdio: ['ignore', 'ignore', 'pipe'] });
    running = child;
    let err = '';
    child.stderr.on('data', (d) => (err += d.toString()));
    const deadline = t0 + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${err.slice(-2000)}`);
      if (performance.now() > deadline) throw new Error(`no SVID within 30 s: ${err.slice(-2000)}`);
      if (existsSync(msg.socketPath)) {
        try {
          await firstResponse(msg.socketPath);
          return performance.now() - t0;
        } catch {
          // bound but not yet listening: try again
        }
      }
      await sleep(1);
    }
  }
  if (msg.kind === 'stop') {
    const child = running;
    running = undefined;
    if (child) {
      child.kill('SIGTERM');
      await Promise.race([exited(child), sleep(10_000, undefined, { ref: false }).then(() => child.kill('SIGKILL'))]);
      await exited(child);
    }
    return 0;
  }
  throw new Error(`unknown request ${msg.kind}`);
}

process.on('message', (msg) => {
  handle(msg).then(
    (ms) => process.send({ id: msg.id, ms }),
    (e) => process.send({ id: msg.id, error: String(e?.message ?? e) }),
  );
});
process.on('disconnect', () => {
  running?.kill('SIGKILL');
  process.exit(0);
});
process.send({ ready: true });
