/**
 * /proc/self/mountinfo (proc(5)): where the driver learns what is mounted, so a restarted driver knows every
 * volume it published without keeping any state of its own.
 * @module
 */
import { readFile } from 'node:fs/promises';

export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** major:minor of the filesystem */
  device: string;
  /** the directory of that filesystem that is mounted here (a bind mount's source, relative to its filesystem) */
  root: string;
  mountPoint: string;
  /** per-mount options (field 6): `ro` or `rw` first, then nosuid, nodev, … */
  options: string[];
  fsType: string;
  source: string;
}

/** The kernel writes space, tab, newline and backslash in paths as octal escapes (\040, \011, \012, \134). */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parses mountinfo text, one entry per line in the kernel's order (a mount stacked on another at the same
 * point comes after it). Lines that do not have the documented shape are skipped, not guessed at.
 * @example parseMountInfo('36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue')
 */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator < 0 || fields.length < separator + 3) continue;
    const [mountId, parentId, device, root, mountPoint, options] = fields;
    if (!/^\d+$/.test(mountId!) || !/^\d+$/.test(parentId!) || !/^\d+:\d+$/.test(device!)) continue;
    entries.push({
      mountId: Number(mountId),
      parentId: Number(parentId),
      device: device!,
      root: unescapeOctal(root!),
      mountPoint: unescapeOctal(mountPoint!),
      options: options!.split(','),
      fsType: fields[separator + 1]!,
      source: unescapeOctal(fields[separator + 2]!),
    });
  }
  return entries;
}

/** The mount visible at exactly `path` (the last one stacked there), or undefined when `path` is no mount point. */
export function topMountAt(entries: readonly MountInfoEntry[], path: string): MountInfoEntry | undefined {
  return entries.findLast((entry) => entry.mountPoint === path);
}

export const isReadOnly = (entry: MountInfoEntry): boolean => entry.options.includes('ro');

/** Reads this process's mount table (the driver runs in the host's mount namespace, as the kubelet does). */
export async function readMountInfo(file = '/proc/self/mountinfo'): Promise<MountInfoEntry[]> {
  return parseMountInfo(await readFile(file, 'utf8'));
}
