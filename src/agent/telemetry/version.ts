/**
 * The agent's version, apart from metrics.ts so that `--version` and an agent without telemetry do not load
 * prom-client (docs/performance.md, start-up).
 * @module
 */
import { readFileSync } from 'node:fs';
import { SEA_ASSETS, seaAsset } from '../sea.js';

/**
 * The package version (the `version` label of `spire_agent_started`, `wisp-agent --version`); "unknown" when
 * Wisp's package.json is not found. Relative to this module (src/agent/telemetry/) or to the agent bundle
 * (dist/agent/agent.cjs); the single executable carries it as an asset.
 */
export function agentVersion(): string {
  const embedded = seaAsset(SEA_ASSETS.version); // the single executable has no package.json beside it
  if (embedded) return new TextDecoder().decode(embedded).trim();
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'wisp' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there: the next layout
    }
  }
  return 'unknown';
}
