/**
 * wisp-csi-driver: the SPIFFE CSI driver, a CSI node plugin that mounts the agent's Workload API socket
 * directory read-only into each pod that asks for it with an inline `csi.spiffe.io` volume. Wiring: flags
 * (config.ts) → logger → Node service over the system mounter → the CSI socket, then (optionally) the
 * kubelet registration socket; SIGTERM removes the registration socket first, so the kubelet stops
 * dialing a driver that is going away.
 * @module
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Server } from '@grpc/grpc-js';
import { CsiConfigError, parseCsiArgs, type CsiDriverConfig } from './config.js';
import { createCsiLogger, type Logger } from './log.js';
import { createSystemMounter } from './mounter.js';
import { createNodeService } from './node-service.js';
import { createCsiServer, createRegistrationServer, listenUnix, VENDOR_VERSION } from './server.js';
import { stopOnSignals } from '../node/stop-signals.js';

/** How long a stopping driver lets calls in flight finish. */
const SHUTDOWN_GRACE_MS = 5000;

/** Removes a socket left by an earlier run; refuses to delete anything that is not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!(await lstat(path)).isSocket()) throw new Error(`${path} exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await unlink(path);
}

async function listenOnSocket(server: Server, path: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  await removeStaleSocket(path);
  await listenUnix(server, path);
  await chmod(path, mode);
}

function shutdown(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Runs the driver until `signal` aborts, then stops its servers and removes its sockets. */
export async function runCsiDriver(config: CsiDriverConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const socketDir = config.workloadApiSocketDir;
  const node = createNodeService({ socketDir, mounter: createSystemMounter(socketDir), log });
  const csi = createCsiServer({ pluginName: config.pluginName, nodeId: config.nodeId, socketDir, node, log });
  // the kubelet (root) is the only client: nobody else may publish volumes
  await listenOnSocket(csi, config.csiSocketPath, 0o600);
  let registration: Server | undefined;
  try {
    if (config.kubeletRegistrationSocket) {
      registration = createRegistrationServer({ pluginName: config.pluginName, endpoint: config.kubeletRegistrationPath, log });
      await listenOnSocket(registration, config.kubeletRegistrationSocket, 0o600);
    }
    log.info(
      { plugin: config.pluginName, version: VENDOR_VERSION, node_id: config.nodeId, csi_socket: config.csiSocketPath, registration_socket: config.kubeletRegistrationSocket ?? null, socket_dir: socketDir },
      'wisp-csi-driver started',
    );
    if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  } finally {
    if (registration && config.kubeletRegistrationSocket) {
      await unlink(config.kubeletRegistrationSocket).catch(() => undefined);
      registration.forceShutdown();
    }
    await shutdown(csi);
    await unlink(config.csiSocketPath).catch(() => undefined);
    log.info('wisp-csi-driver stopped');
  }
}

/** The CLI: returns the exit code (2 for a usage error). */
export async function main(argv: readonly string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let config: CsiDriverConfig;
  try {
    config = parseCsiArgs(argv.slice(2), env);
  } catch (err) {
    if (!(err instanceof CsiConfigError)) throw err;
    if (err.help) {
      process.stdout.write(err.message);
      return 0;
    }
    process.stderr.write(`wisp-csi-driver: ${err.message}\n`);
    return 2;
  }
  const log = createCsiLogger(config.logLevel);
  const stop = stopOnSignals(log);
  try {
    await runCsiDriver(config, log, stop.signal);
    return 0;
  } catch (err) {
    log.error({ error: err instanceof Error ? err.message : String(err) }, 'wisp-csi-driver failed');
    return 1;
  } finally {
    stop.dispose();
  }
}
