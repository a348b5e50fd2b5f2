/**
 * `wisp x509 mint`: an X509-SVID for something that has no agent (bootstrapping). The key pair is made
 * here and never leaves this machine; the issuer signs a CSR. SPIRE's `spire-server x509 mint`, with
 * `--write DIR` writing svid.pem, key.pem (0600) and bundle.pem. `wisp x509 revoke`: per-SVID revocation.
 * @module
 */
// reflect-metadata stays eager: it is small, and importers of the CLI (tests, the issuer's parser that
// `wisp validate` loads) rely on its global polyfill as they did when @peculiar/x509 was imported here
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeOutputFiles } from '../node/file-output.js';
import { addGroup, type LeafBuilder } from './command.js';
import { fromBase64, toBase64 } from '../shared/encoding/base64.js';
import { toPem } from '../shared/encoding/pem.js';
import { bundleToPem, type SpiffeBundle } from './bundle.js';
import { collect, parseSpiffeIdFlag, parseTtlFlag, requireFlag } from './flags.js';

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

interface MintResponse {
  svid: { spiffeId: string; certChain: string[]; expiresAt: number };
  bundle: SpiffeBundle;
}

/**
 * @peculiar/x509 loaded only by `x509 mint`: it is a third of the CLI's start-up time for every other command
 * (docs/performance.md, start-up).
 */
async function loadX509(): Promise<typeof import('@peculiar/x509')> {
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}

/** A P-256 key and a CSR for `spiffeId` (URI SAN; the issuer decides the certificate's contents). */
export async function buildKeyAndCsr(spiffeId: string, dnsNames: readonly string[]): Promise<{ csrDer: Uint8Array; keyPem: string }> {
  const x509 = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: SIGNING,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }, ...dnsNames.map((d) => ({ type: 'dns' as const, value: d }))])],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { csrDer: new Uint8Array(csr.rawData), keyPem: toPem('PRIVATE KEY', new Uint8Array(pkcs8)) };
}

export function registerX509Commands(program: Command, leaf: LeafBuilder): void {
  const group = addGroup(program, 'x509', 'Mint X509-SVIDs', 'wisp x509 mint --spiffeID spiffe://example.org/bootstrap --write ./svid');
  const mint = leaf(group, 'mint', 'Mints an X509-SVID (key generated locally)', [
    'wisp x509 mint --spiffeID spiffe://example.org/db --dns db.internal --ttl 1h --write /etc/db/svid',
  ]);
  mint.command
    .option('--spiffeID <id>', 'SPIFFE ID of the X509-SVID')
    .option('--ttl <seconds>', "TTL of the X509-SVID (default: the issuer's)")
    .option('--dns <name>', 'DNS name to include; repeatable', collect)
    .option('--write <dir>', 'directory to write svid.pem, key.pem and bundle.pem to (default: print them)');
  mint.action(async (ctx, opts) => {
    const spiffeId = parseSpiffeIdFlag('--spiffeID', requireFlag('--spiffeID', opts['spiffeID'] as string | undefined));
    const ttlSeconds = parseTtlFlag('--ttl', opts['ttl'] as string | undefined);
    const dnsNames = (opts['dns'] as string[] | undefined) ?? [];
    const client = ctx.client();
    const { csrDer, keyPem } = await buildKeyAndCsr(spiffeId, dnsNames);
    const res = await client.request<MintResponse>('POST', '/admin/v1/x509-svids/mint', {
      body: { spiffeId, csr: toBase64(csrDer), ttlSeconds, ...(dnsNames.length ? { dnsNames } : {}) },
    });
    const svidPem = res.svid.certChain.map((c) => toPem('CERTIFICATE', fromBase64(c, 'ERR_BAD_REQUEST', 'SVID certificate'))).join('');
    const bundlePem = bundleToPem(res.bundle);
    const dir = opts['write'] as string | undefined;
    if (dir) {
      await writeOutputFiles(dir, [
        { name: 'svid.pem', data: svidPem, mode: PUBLIC_FILE_MODE },
        { name: 'key.pem', data: keyPem, mode: PRIVATE_FILE_MODE },
        { name: 'bundle.pem', data: bundlePem, mode: PUBLIC_FILE_MODE },
      ]);
    }
    if (ctx.output === 'json') {
      return ctx.printJson({ svid: res.svid, ...(dir ? { written: ['svid.pem', 'key.pem', 'bundle.pem'].map((f) => join(dir, f)) } : { privateKey: keyPem }), bundle: res.bundle });
    }
    if (dir) {
      ctx.print(`X509-SVID written to ${join(dir, 'svid.pem')}`, `Private key written to ${join(dir, 'key.pem')}`, `Root CAs written to ${join(dir, 'bundle.pem')}`);
    } else {
      ctx.io.stdout(`X509-SVID:\n${svidPem}\nPrivate key:\n${keyPem}\nRoot CAs:\n${bundlePem}`);
    }
  });

  const revoke = leaf(group, 'revoke', 'Revokes one X509-SVID by serial, or every SVID of a SPIFFE ID (docs/revocation.md)', [
    'wisp x509 revoke --serial 4f:3a:...',
    'wisp x509 revoke --spiffeID spiffe://example.org/db --reason "key leaked"',
  ]);
  revoke.command
    .option('--serial <hex>', 'serial number of the X509-SVID (hex, colons allowed)')
    .option('--spiffeID <id>', 'SPIFFE ID: revokes every SVID of it issued until now (with --serial: the SVID\'s SPIFFE ID)')
    .option('--reason <text>', 'why (kept with the revocation)');
  revoke.action(async (ctx, opts) => {
    const serial = opts['serial'] as string | undefined;
    const id = opts['spiffeID'] as string | undefined;
    if (serial === undefined && id === undefined) requireFlag('--serial', serial);
    const spiffeId = id === undefined ? undefined : parseSpiffeIdFlag('--spiffeID', id);
    const res = await ctx.client().request<{ revocations: unknown[] }>('POST', '/admin/v1/revocations', {
      body: { ...(serial !== undefined ? { serialNumber: serial } : {}), ...(spiffeId ? { spiffeId } : {}), ...(opts['reason'] !== undefined ? { reason: opts['reason'] } : {}) },
    });
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.print(`Revoked: ${res.revocations.length} record(s)`);
  });
}
