// OpenSSL and a throwaway CA for the Node-side X.509 tests: the independent tools that check what Wisp issues.
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PemConverter, X509Certificate } from '@peculiar/x509';
import { createCaCertificate } from '../../../../src/shared/spiffe/ca-cert.js';
import type { TrustDomain } from '../../../../src/shared/spiffe/id.js';
import type { SigningCa } from '../../../../src/shared/spiffe/x509.js';

export const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A temp dir for PEM files and openssl-made CSRs; `cleanup()` removes it (call it from afterAll). */
export function createOpensslKit(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return {
    writePem(der: Uint8Array, tag = 'CERTIFICATE'): string {
      const path = join(dir, `f${++n}.pem`);
      writeFileSync(path, PemConverter.encode(der.slice().buffer as ArrayBuffer, tag));
      return path;
    },
    /** A CSR made by `openssl req` for a fresh key of the given openssl algorithm options. */
    opensslCsr(keyArgs: string[]): Uint8Array {
      const key = join(dir, `k${++n}.pem`);
      const csr = join(dir, `c${n}.der`);
      openssl('req', '-new', ...keyArgs, '-nodes', '-keyout', key, '-subj', '/CN=ignored', '-outform', 'DER', '-out', csr);
      return new Uint8Array(readFileSync(csr));
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A fresh P-256 CA valid for a day from `now` (ms): self-signed, or an intermediate under `upstream`. */
export async function newTestCa(td: TrustDomain, now: number, upstream?: SigningCa): Promise<SigningCa & { der: Uint8Array }> {
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
  const params = { trustDomain: td, subject: upstream ? 'O=Wisp,CN=Wisp Intermediate' : 'O=Wisp,CN=Wisp CA', publicKeySpki: spki, now, notAfter: now + 86400_000 };
  const der = await createCaCertificate(params, upstream ? { upstream } : { selfKey: keys.privateKey, signAlgorithm: ES256 });
  return { der, cert: new X509Certificate(der), privateKey: keys.privateKey, signAlgorithm: ES256 };
}
