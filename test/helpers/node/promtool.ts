/**
 * Debian's `prometheus` package for the telemetry tests: `promtool` and the `prometheus` server, found on
 * PATH or installed once (as root, apt-get); and `promtool check metrics` with the one allowance the
 * project's naming implies (docs/telemetry.md): SPIRE's counters carry no `_total` and its uptime is
 * `_in_ms` (SPIRE's Prometheus sink names them so, and dashboards use those names), and prom-client's
 * default Node metrics name three gauges `_total`. Any other problem, a parse error included, is reported.
 * @module
 */
import { spawnSync } from 'node:child_process';

const onPath = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();

/** The binary's path, or why there is none (the caller skips with that reason). */
export function findPrometheusTool(bin: 'promtool' | 'prometheus'): { path?: string; why?: string } {
  if (onPath(bin)) return { path: onPath(bin) };
  if (process.getuid?.() !== 0) return { why: `${bin} is not on PATH and the test is not root (cannot apt-get install prometheus)` };
  const apt = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'prometheus'], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (apt.status !== 0) return { why: `apt-get install prometheus failed: ${(apt.stderr || apt.stdout).trim().split('\n').at(-1)}` };
  return onPath(bin) ? { path: onPath(bin) } : { why: `prometheus installed but ${bin} is not on PATH` };
}

const PROM_CLIENT_TOTAL_GAUGES = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']);

/** Runs `promtool check metrics` on an exposition: every line it printed, and those outside the allowance. */
export function checkMetrics(promtool: string, exposition: string): { problems: string[]; unexpected: string[] } {
  const run = spawnSync(promtool, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  const problems = `${run.stdout}${run.stderr}`.split('\n').filter((l) => l.trim() !== '');
  const spireCounters = new Set([...exposition.matchAll(/^# TYPE (spire_\S+) counter$/gm)].map((m) => m[1]!));
  const unexpected = problems.filter((line) => {
    const [name, ...rest] = line.trim().split(' ');
    const lint = rest.join(' ');
    if (lint === 'counter metrics should have "_total" suffix') return !spireCounters.has(name!);
    if (lint === 'non-counter metrics should not have "_total" suffix') return !PROM_CLIENT_TOTAL_GAUGES.has(name!);
    if (lint === 'metric names should not contain abbreviated units') return name !== 'spire_agent_uptime_in_ms';
    return true;
  });
  if (run.status !== 0 && problems.length === 0) unexpected.push(`promtool exited ${run.status} without output`);
  return { problems, unexpected };
}
