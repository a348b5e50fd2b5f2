/**
 * The `systemd` workload attestor (SPIRE's `WorkloadAttestor "systemd"`): the caller's pid → its unit →
 * `systemd:id:<unit Id>` and `systemd:fragment_path:<unit file>`.
 *
 * SPIRE asks the system manager over D-Bus (`GetUnitByPID`, then the unit's `Id` and `FragmentPath`). Here
 * the unit comes from the pid's cgroup, read with the pid-reuse guard (./cgroups.ts): systemd names every
 * unit's cgroup after the unit, and the system manager's unit of a pid is the first non-slice component
 * of its path (`/system.slice/nginx.service` → nginx.service; a login session
 * `/user.slice/user-1000.slice/session-3.scope` → session-3.scope; a user's services
 * `/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service` → user@1000.service, as SPIRE's
 * system-bus lookup answers: below it the user names the cgroups). A pid only in slices gets the innermost
 * slice, the root cgroup `-.slice`. The path read is systemd's own hierarchy: the `name=systemd` line under
 * cgroup v1, else the v2 `0::` line.
 * `Id` and `FragmentPath` then come from systemd itself, `systemctl show` (an argument array, no shell): a
 * D-Bus client for Node would be a new dependency and none is well kept, and systemctl is on every systemd
 * host. Answers are reused for 1 s per unit (a unit file can change only by `daemon-reload`).
 * A unit with no unit file (-.slice, init.scope; a transient unit's is in /run/systemd/transient) gets
 * `systemd:fragment_path:` with an empty path, as SPIRE's.
 * A host not running systemd fails every call with the reason (SPIRE: no D-Bus connection, same).
 * @module
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { WispError } from '../../shared/errors.js';
import { parseCgroupFile, readPeerCgroupFile } from './cgroups.js';
import type { WorkloadAttestor } from './unix-attestor.js';

export interface SystemdAttestorOptions {
  /** tests only: a /proc written by the test (default `/proc`) */
  procRoot?: string;
  /** tests only: systemd's runtime directory whose presence says systemd runs (sd_booted; default `/run/systemd/system`) */
  systemdRunDir?: string;
  /** the systemctl to run (default `systemctl`, from PATH) */
  systemctl?: string;
  now?: () => number;
}

/** systemctl's answer within this, or the call fails. */
const SYSTEMCTL_TIMEOUT_MS = 5_000;
const UNIT_CACHE_MS = 1_000;
const UNIT_CACHE_MAX = 1024;
/** systemd's unit name rule (unit_name_is_valid): name chars, and a suffix of the unit types that have cgroups */
const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]{1,250}\.(?:service|scope|slice|socket|mount|swap)$/;

function failed(message: string, cause?: unknown): WispError {
  return new WispError('ERR_UNAVAILABLE', `workload attestation failed: systemd: ${message}`, cause === undefined ? undefined : { cause });
}

/** systemd's cgroup path of a /proc/<pid>/cgroup file: the `name=systemd` (v1) line, else the v2 one. */
export function systemdCgroupPath(text: string): string | undefined {
  const lines = parseCgroupFile(text);
  return (lines.find((l) => l.controllers === 'name=systemd') ?? lines.find((l) => l.hierarchy === '0' && l.controllers === ''))?.path;
}

/**
 * The system manager's unit of a cgroup path (see the module comment), or undefined when the path is not
 * one systemd made (outside the agent's cgroup namespace, or a component that is no unit name).
 */
export function systemdUnitFromCgroupPath(path: string): string | undefined {
  if (!path.startsWith('/')) return undefined;
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 0) return '-.slice';
  let slice: string | undefined;
  for (const raw of parts) {
    // systemd prefixes '_' to a component that would clash with a kernel file name (cg_escape)
    const name = raw.startsWith('_') ? raw.slice(1) : raw;
    if (!UNIT_NAME.test(name)) return undefined;
    if (!name.endsWith('.slice')) return name;
    slice = name;
  }
  return slice;
}

/** `Key=value` lines of `systemctl show` → the two properties. */
export function parseSystemctlShow(text: string): { id: string; fragmentPath: string } {
  const props = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const id = props.get('Id');
  if (!id) throw new Error('systemctl show printed no Id');
  return { id, fragmentPath: props.get('FragmentPath') ?? '' };
}

/**
 * @example
 * const attest = createSystemdAttestor();
 * const selectors = await attest(peer); // [{ type: 'systemd', value: 'id:nginx.service' }, …]
 */
export function createSystemdAttestor(options: SystemdAttestorOptions = {}): WorkloadAttestor {
  const proc = options.procRoot ?? '/proc';
  const runDir = options.systemdRunDir ?? '/run/systemd/system';
  const systemctl = options.systemctl ?? 'systemctl';
  const now = options.now ?? Date.now;
  const units = new Map<string, { at: number; info: Promise<{ id: string; fragmentPath: string }> }>();

  function show(unit: string): Promise<{ id: string; fragmentPath: string }> {
    return new Promise((resolve, reject) => {
      execFile(systemctl, ['show', '--property=Id', '--property=FragmentPath', '--', unit], { timeout: SYSTEMCTL_TIMEOUT_MS, maxBuffer: 64 * 1024, env: { ...process.env, SYSTEMD_PAGER: '', LC_ALL: 'C' } }, (error, stdout, stderr) => {
        if (error) {
          const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${systemctl} not found` : error.killed ? `no answer within ${SYSTEMCTL_TIMEOUT_MS} ms` : String(stderr).trim() || error.message;
          reject(failed(`systemctl show ${unit}: ${why}`, error));
          return;
        }
        try {
          resolve(parseSystemctlShow(String(stdout)));
        } catch (e) {
          reject(failed(`systemctl show ${unit}: ${(e as Error).message}`, e));
        }
      });
    });
  }

  function unitInfo(unit: string): Promise<{ id: string; fragmentPath: string }> {
    const t = now();
    const hit = units.get(unit);
    if (hit && t - hit.at >= 0 && t - hit.at < UNIT_CACHE_MS) return hit.info;
    if (units.size >= UNIT_CACHE_MAX) units.clear();
    const info = show(unit);
    units.set(unit, { at: t, info });
    info.catch(() => units.delete(unit));
    return info;
  }

  return async (peer) => {
    try {
      await access(runDir);
    } catch {
      throw failed(`systemd is not running on this host (no ${runDir}); remove workloadAttestors.systemd from the agent config`);
    }
    const path = systemdCgroupPath(await readPeerCgroupFile(proc, peer));
    if (path === undefined) throw failed(`pid ${peer.pid} has no systemd cgroup (no name=systemd or cgroup v2 line)`);
    const unit = systemdUnitFromCgroupPath(path);
    if (unit === undefined) throw failed(`pid ${peer.pid} is in cgroup ${path}, which names no systemd unit (is the agent in the host's cgroup namespace?)`);
    const { id, fragmentPath } = await unitInfo(unit);
    return [
      { type: 'systemd', value: `id:${id}` },
      { type: 'systemd', value: `fragment_path:${fragmentPath}` },
    ];
  };
}
