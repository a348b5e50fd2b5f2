/**
 * Test projects, one per runtime (STYLE G17):
 * - shared-node / shared-workerd: the runtime-agnostic core, run on both runtimes (proves it needs neither)
 * - worker: the issuer inside workerd with real D1 (migrations applied) and Durable Objects
 * - agent: the Node agent (and src/node, the Node-only code it shares with the CLI)
 * - e2e: black-box runs of the real issuer (wrangler dev) and real agent processes
 * - k8s: Wisp's Kubernetes parts against a real API server and kubelet (../shared/k8s-testbed)
 */
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

const TEST_SECRETS = {
  ADMIN_TOKEN: 'test-admin-token-0123456789abcdef0123456789',
  KEY_ENCRYPTION_SECRET: 'test-key-encryption-secret-0123456789abcdef',
};

const workerdProject = (name: string, include: string[]) => ({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: { ...TEST_SECRETS, TEST_MIGRATIONS: await readD1Migrations('./migrations') },
      },
    })),
  ],
  // Crypto-heavy tests (RSA keys, two CA lifetimes of rotation) outlast vitest's 5 s default on 2 loaded cores.
  test: { name, include, setupFiles: ['./test/worker/setup.ts'], testTimeout: 60_000 },
});

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { test: { name: 'shared-node', include: ['test/shared/**/*.test.ts', 'test/architecture*.test.ts'], environment: 'node' } },
      workerdProject('shared-workerd', ['test/shared/**/*.test.ts']),
      workerdProject('worker', ['test/worker/**/*.test.ts']),
      { test: { name: 'agent', include: ['test/agent/**/*.test.ts', 'test/node/**/*.test.ts'], environment: 'node', testTimeout: 30_000 } },
      // A real Kubernetes control plane and kubelet (../shared/k8s-testbed), started once for the project.
      { test: { name: 'k8s', include: ['test/k8s/**/*.test.ts'], environment: 'node', globalSetup: ['./test/k8s/global-setup.ts'], testTimeout: 120_000, hookTimeout: 180_000, fileParallelism: false } },
      { test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], environment: 'node', testTimeout: 180_000, hookTimeout: 180_000, fileParallelism: false } },
    ],
  },
});
