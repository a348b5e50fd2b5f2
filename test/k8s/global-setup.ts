/**
 * Starts ../shared/k8s-testbed once for the `k8s` project: builds it on first use (about 15 minutes on 2 cores,
 * then cached), starts it, and provides its environment to the tests. A testbed that was already running
 * (another run, a developer's) is used and left running; one this run started is stopped at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { TESTBED_SCRIPT, testbedNodeUnavailableReason, testbedUnavailableReason, type TestbedEnv, type TestbedState } from '../helpers/node/k8s-testbed.js';

let startedHere = false;

export function setup(project: TestProject): void {
  const unavailable = testbedUnavailableReason();
  if (unavailable) {
    project.provide('k8sTestbed', { ready: false, skipReason: unavailable } satisfies TestbedState);
    return;
  }
  const alreadyUp = spawnSync('bash', [TESTBED_SCRIPT, 'status'], { stdio: 'ignore' }).status === 0;
  if (!alreadyUp) {
    // A failed build or start is a failure of the run, not a skip: this machine should be able to run it.
    execFileSync('bash', [TESTBED_SCRIPT, 'up'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 45 * 60_000 });
    startedHere = true;
  }
  const env = JSON.parse(execFileSync('bash', [TESTBED_SCRIPT, 'env', '--json'], { encoding: 'utf8' })) as TestbedEnv;
  const nodeSkipReason = testbedNodeUnavailableReason();
  project.provide('k8sTestbed', { ready: true, env, node: nodeSkipReason === undefined, nodeSkipReason } satisfies TestbedState);
}

export function teardown(): void {
  if (startedHere) execFileSync('bash', [TESTBED_SCRIPT, 'down'], { stdio: ['ignore', 'ignore', 'inherit'] });
}
