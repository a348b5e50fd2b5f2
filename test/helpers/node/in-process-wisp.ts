// The set-up of the CLI tests in process: one in-process issuer for the test file (in-process-issuer.ts),
// and `wisp` run against it with its admin token (wisp-cli.ts runWispInProcess).
import { afterAll, beforeAll } from 'vitest';
import { startInProcessIssuer, type InProcessIssuer, type InProcessIssuerOptions } from './in-process-issuer.js';
import { runWispInProcess, type WispRun } from './wisp-cli.js';

export interface InProcessWisp {
  /** `wisp args` against the file's issuer */
  wisp(args: string[]): Promise<WispRun>;
  /** the file's issuer, once beforeAll has run */
  readonly issuer: InProcessIssuer;
}

/** Registers the file's beforeAll (start the issuer) and afterAll (close it). */
export function useInProcessWisp(options: InProcessIssuerOptions = {}): InProcessWisp {
  let issuer: InProcessIssuer | undefined;
  beforeAll(async () => {
    issuer = await startInProcessIssuer(options);
  });
  afterAll(async () => {
    await issuer?.close();
  });
  const started = () => {
    if (!issuer) throw new Error('useInProcessWisp: the issuer is not started yet (beforeAll)');
    return issuer;
  };
  return {
    wisp: (args) => runWispInProcess(args, started()),
    get issuer() {
      return started();
    },
  };
}
