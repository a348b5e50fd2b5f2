// The deploy bundle builds: `wrangler deploy --dry-run` bundles src/worker with the bindings of wrangler.toml.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/local-stack.js';

it('builds the deploy bundle with wrangler deploy --dry-run', () => {
  const out = mkdtempSync(join(tmpdir(), 'wisp-deploy-'));
  try {
    const res = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), 'deploy', '--dry-run', '--outdir', out], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false' },
      timeout: 120_000,
    });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/env\.CA \(TrustDomainCa\)\s+Durable Object/);
    expect(res.stdout).toMatch(/env\.DB \(wisp\)\s+D1 Database/);
    expect(statSync(join(out, 'index.js')).size).toBeGreaterThan(10_000);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
