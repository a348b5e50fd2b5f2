// Helpers for the CA Durable Object tests: a stub per test, a settable clock inside the DO, CSR-derived keys.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { TrustDomainCaApi } from '../../../src/worker/ca/ca-api.js';
import { CA_CLOCK, type TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { parseCsr } from '../../../src/shared/spiffe/csr.js';
import { generateKeys, makeCsr, type KeyKind } from '../shared/pki.js';

let counter = 0;

/** A CA object of its own for one test. */
export function freshCa(): { name: string; stub: DurableObjectStub<TrustDomainCa>; api: TrustDomainCaApi } {
  const name = `ca-test-${Date.now()}-${++counter}`;
  return { name, ...caNamed(name) };
}

/** A (new) stub to the CA object called `name`, e.g. after abortAllDurableObjects(). */
export function caNamed(name: string): { stub: DurableObjectStub<TrustDomainCa>; api: TrustDomainCaApi } {
  const stub = env.CA.get(env.CA.idFromName(name));
  return { stub, api: stub as unknown as TrustDomainCaApi };
}

/** Makes the DO read time from `clock` (a closure in this isolate). */
export async function setCaClock(stub: DurableObjectStub<TrustDomainCa>, clock: () => number): Promise<void> {
  await runInDurableObject(stub, (instance: TrustDomainCa) => {
    instance[CA_CLOCK](clock);
  });
}

/** A subject public key (DER SPKI bytes) as the Worker gets it from a verified CSR. */
export async function subjectSpki(kind: KeyKind = 'P-256'): Promise<Uint8Array> {
  const { publicKeySpki } = await parseCsr(await makeCsr(kind, await generateKeys(kind)));
  return publicKeySpki;
}
