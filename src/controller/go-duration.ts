/**
 * Go durations as the CRDs carry them (metav1.Duration, Go's time.ParseDuration): a sequence of decimal
 * numbers with units ns, us (µs), ms, s, m, h, e.g. `1h`, `1h30m`, `1.5h`, `300ms`; `0` alone. TTLs become
 * whole seconds truncated, as spire-controller-manager does (`int32(ttl / time.Second)`). Negative durations
 * are refused: a TTL cannot be one.
 * @module
 */

const UNIT_NANOS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Whole seconds of a Go duration string, or undefined (with nothing else) when it is not one. */
export function parseGoDurationSeconds(input: string): number | undefined {
  if (input === '0' || input === '+0') return 0;
  const body = input.startsWith('+') ? input.slice(1) : input;
  if (body === '') return undefined;
  const part = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;
  let nanos = 0;
  let at = 0;
  while (at < body.length) {
    part.lastIndex = at;
    const m = part.exec(body);
    if (!m || m[1] === '' || m[1] === '.') return undefined;
    nanos += Number(m[1]) * UNIT_NANOS[m[2]!]!;
    at = part.lastIndex;
  }
  const seconds = Math.floor(nanos / 1e9 + 1e-9);
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}
