/**
 * The real Kubernetes control plane and node of ../shared/k8s-testbed for the `k8s` test project.
 * test/k8s/global-setup.ts starts it once per run (building it on first use, cached in ~/.cache/k8s-testbed)
 * and provides its environment; tests read it here and skip with the reason when this machine cannot run it.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { inject } from 'vitest';

/** testbed.sh beside the project checkout (the guide's layout: ../shared next to the repo) */
export const TESTBED_SCRIPT = resolve(import.meta.dirname, '..', '..', '..', '..', 'shared', 'k8s-testbed', 'testbed.sh');

/** What `testbed.sh env --json` gives (README of the testbed), plus whether the node (kubelet, CSI) runs. */
export interface TestbedEnv {
  KUBECONFIG: string;
  TESTBED_API_SERVER: string;
  TESTBED_CA_CERT: string;
  TESTBED_CA_KEY: string;
  TESTBED_ADMIN_TOKEN: string;
  TESTBED_SA_ISSUER: string;
  TESTBED_SA_JWKS_URL: string;
  TESTBED_SA_SIGNING_KEY: string;
  TESTBED_SA_PUBLIC_KEY: string;
  TESTBED_NODE_NAME: string;
  TESTBED_KUBELET_URL: string;
  TESTBED_KUBELET_READONLY_URL: string;
  TESTBED_KUBELET_CA: string;
  TESTBED_KUBELET_CLIENT_CERT: string;
  TESTBED_KUBELET_CLIENT_KEY: string;
  TESTBED_KUBELET_ROOT: string;
  TESTBED_PLUGINS_REGISTRY: string;
  TESTBED_BIN: string;
  TESTBED_LOGS: string;
  TESTBED_DIR: string;
  [name: string]: string;
}

export type TestbedState =
  | { ready: true; env: TestbedEnv; node: boolean; nodeSkipReason?: string }
  | { ready: false; skipReason: string };

declare module 'vitest' {
  export interface ProvidedContext {
    k8sTestbed: TestbedState;
  }
}

/** Why this machine cannot run the testbed at all, or undefined when it can. */
export function testbedUnavailableReason(): string | undefined {
  if (!existsSync(TESTBED_SCRIPT)) return `the Kubernetes testbed is not beside the checkout (${TESTBED_SCRIPT} missing)`;
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
  } catch {
    return 'Go is not installed, and the Kubernetes testbed builds from the Go module proxy';
  }
  return undefined;
}

/** Why the testbed's node (kubelet, CSI mounts) cannot run here, or undefined when it can. */
export function testbedNodeUnavailableReason(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'the kubelet and CSI mounts need root (the testbed starts only its API server)';
}

/** The testbed as the global setup left it. */
export function testbed(): TestbedState {
  return inject('k8sTestbed');
}

/** kubectl from the testbed with its kubeconfig; returns stdout. */
export function kubectl(env: TestbedEnv, args: string[], input?: string): string {
  return execFileSync(`${env.TESTBED_BIN}/kubectl`, args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, KUBECONFIG: env.KUBECONFIG },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
