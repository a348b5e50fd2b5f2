// `wisp wit validate` in process: WIT-SVIDs signed by the real CA core of the in-process issuer, checked
// offline against the issuer's published SPIFFE bundle, with and without a proof of possession (WPT).
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unwrap } from '../../src/shared/result.js';
import { witHash } from '../../src/shared/spiffe/wit-svid.js';
import { startInProcessIssuer, type InProcessIssuer } from '../helpers/node/in-process-issuer.js';
import { ONE_LINE_ERROR, runWispInProcess } from '../helpers/node/wisp-cli.js';

let issuer: InProcessIssuer;
let dir: string;
let bundleFile: string;
let key: { privateKey: CryptoKey; publicJwk: JWK };
const ID = 'spiffe://example.org/web';

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

async function wit(publicJwk: JWK, ttlSeconds = 600): Promise<string> {
  const [signed] = await issuer.ca.signWitSvids([{ spiffeId: ID, publicJwk: publicJwk as Record<string, unknown>, ttlSeconds }]);
  return unwrap(signed!).token;
}

async function proof(token: string, signer: CryptoKey, aud: string, lifetime = 60, wth?: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ wth: wth ?? (await witHash(token)), jti: crypto.randomUUID() }).setProtectedHeader({ alg: 'ES256', typ: 'wpt+jwt' }).setAudience(aud).setIssuedAt(now).setExpirationTime(now + lifetime).sign(signer);
}

beforeAll(async () => {
  issuer = await startInProcessIssuer({ config: { WIT_SVID_TTL: '1h' } });
  dir = mkdtempSync(join(tmpdir(), 'wisp-cli-wit-'));
  bundleFile = file('bundle.json', await (await fetch(`${issuer.url}/bundle`)).text());
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = { privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), alg: 'ES256' } };
});

afterAll(async () => {
  await issuer?.close();
});

const wisp = (args: string[]) => runWispInProcess(['wit', 'validate', ...args], issuer);

describe('wisp wit validate', () => {
  it('accepts a WIT-SVID against the bundle, and with a proof of possession for the audience', async () => {
    const token = await wit(key.publicJwk);
    const tokenFile = file('wit.jwt', `${token}\n`);
    const plain = await wisp(['--tokenFile', tokenFile, '--bundle', bundleFile]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain(`WIT-SVID valid: ${ID}`);
    expect(plain.stdout).toContain('proof of possession: not checked');

    const wpt = file('wpt.jwt', await proof(token, key.privateKey, 'https://api.example.org'));
    const json = await wisp(['--tokenFile', tokenFile, '--bundle', bundleFile, '--proofFile', wpt, '--audience', 'https://api.example.org', '--output', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { spiffeId: string; expiresAt: string; proofOfPossession: string };
    expect(out).toMatchObject({ spiffeId: ID, proofOfPossession: 'verified' });
    expect(Date.parse(out.expiresAt) / 1000).toBe(decodeJwt(token).exp);
  });

  it('refuses a proof for another audience, another WIT, by another key, or too long-lived', async () => {
    const token = await wit(key.publicJwk);
    const tokenFile = file('wit2.jwt', token);
    const other = await generateKeyPair('ES256');
    const cases: Array<[string, string]> = [
      ['wrong-aud', await proof(token, key.privateKey, 'https://elsewhere.example.org')],
      ['other-wit', await proof(token, key.privateKey, 'https://api.example.org', 60, await witHash(await wit(key.publicJwk)))],
      ['other-key', await proof(token, other.privateKey, 'https://api.example.org')],
      ['long-lived', await proof(token, key.privateKey, 'https://api.example.org', 3600)],
    ];
    for (const [name, wpt] of cases) {
      const run = await wisp(['--tokenFile', tokenFile, '--bundle', bundleFile, '--proofFile', file(`${name}.jwt`, wpt), '--audience', 'https://api.example.org']);
      expect(run.code, name).not.toBe(0);
      expect(run.stderr, name).toMatch(ONE_LINE_ERROR);
      expect(run.stderr, name).toContain('proof of possession is not valid');
    }
  });

  it('refuses a tampered WIT-SVID, a JWT-SVID, a bundle without wit-svid keys, and --proofFile without --audience', async () => {
    const token = await wit(key.publicJwk);
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'spiffe://example.org/admin' })).toString('base64url')}.${s}`;
    const jwtSvid = unwrap(await issuer.ca.signJwtSvid({ spiffeId: ID, audience: ['x'], ttlSeconds: 60 })).token;
    for (const [name, t] of [['forged', forged], ['jwt-svid', jwtSvid]] as const) {
      const run = await wisp(['--tokenFile', file(`${name}.jwt`, t), '--bundle', bundleFile]);
      expect(run.code, name).not.toBe(0);
      expect(run.stderr, name).toContain('WIT-SVID is not valid');
    }
    const noWit = JSON.parse(await (await fetch(`${issuer.url}/bundle`)).text()) as { keys: Array<{ use: string }> };
    const stripped = file('no-wit.json', JSON.stringify({ ...noWit, keys: noWit.keys.filter((k) => k.use !== 'wit-svid') }));
    const run = await wisp(['--tokenFile', file('ok.jwt', token), '--bundle', stripped]);
    expect(run.stderr).toContain('has no wit-svid keys');
    const usage = await wisp(['--tokenFile', file('ok2.jwt', token), '--bundle', bundleFile, '--proofFile', file('p.jwt', 'x')]);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toContain('--proofFile needs --audience');
  });
});
