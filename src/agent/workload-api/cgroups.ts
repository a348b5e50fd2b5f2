/**
 * /proc/<pid>/cgroup, read for the workload attestors that place a caller by its cgroups (k8s, docker,
 * systemd): the one line parser, and the read with the pid-reuse guard the unix attestor also applies.
 * Only this file is read: the kernel writes it and a workload cannot forge it (a process may move itself
 * only into cgroups it can write to, which is why the attestors ignore user-delegated subtrees).
 * Lines are `hierarchy-ID:controller-list:cgroup-path` (v1: `4:memory:/docker/<id>`, `1:name=systemd:/…`;
 * v2: `0::/system.slice/foo.service`); the path may itself contain ':' (containerd's systemd shape).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { WispError } from '../../shared/errors.js';
import { parseStartTime, type PeerInfo } from './unix-attestor.js';

export interface CgroupLine {
  hierarchy: string;
  /** `memory`, `cpu,cpuacct`, `name=systemd`; '' on the v2 line */
  controllers: string;
  path: string;
}

/** The lines of a /proc/<pid>/cgroup file; malformed lines are skipped. */
export function parseCgroupFile(text: string): CgroupLine[] {
  const lines: CgroupLine[] = [];
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    lines.push({ hierarchy: line.slice(0, first), controllers: line.slice(first + 1, second), path: line.slice(second + 1).trim() });
  }
  return lines;
}

function failed(message: string, cause?: unknown): WispError {
  return new WispError('ERR_UNAVAILABLE', `workload attestation failed: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * The caller's /proc/<pid>/cgroup text. When the peer's start time is known (taken at accept), the process
 * must still have it after the read: the file read was the connecting process's, not one that reused its pid.
 * @throws WispError ERR_UNAVAILABLE
 * @example const text = await readPeerCgroupFile('/proc', peer);
 */
export async function readPeerCgroupFile(procRoot: string, peer: PeerInfo): Promise<string> {
  let text: string;
  try {
    text = await readFile(`${procRoot}/${peer.pid}/cgroup`, 'utf8');
  } catch (e) {
    throw failed(`cannot read the cgroups of pid ${peer.pid}`, e);
  }
  if (peer.startTime !== undefined) {
    const start = await readFile(`${procRoot}/${peer.pid}/stat`, 'utf8').then(parseStartTime, () => undefined);
    if (start !== peer.startTime) throw failed(`pid ${peer.pid} was reused`);
  }
  return text;
}
