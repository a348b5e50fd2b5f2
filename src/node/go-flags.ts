/**
 * Go's flag package takes `-name`, `-name=value`, `--name` and `--name=value` alike, so SPIRE users (and the
 * upstream SPIFFE CSI driver's manifests) type long flags with one dash; commander knows only `--name`. The one
 * rewrite for `wisp`, `wisp-agent` and `wisp-csi-driver`.
 * @module
 */

/**
 * Rewrites `-word` (a letter, then one or more letters, digits or dashes; also `-word=value`) to `--word`
 * before commander sees it; single letters (`-h`), `-` (stdin), values and everything after `--` stay.
 * @example normalizeGoFlags(['entry', 'show', '-spiffeID', 'spiffe://example.org/web']) // [..., '--spiffeID', ...]
 */
export function normalizeGoFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const arg of args) {
    if (rest || arg === '--') {
      rest = true;
      out.push(arg);
    } else out.push(/^-[A-Za-z][A-Za-z0-9-]+(=|$)/.test(arg) ? `-${arg}` : arg);
  }
  return out;
}
