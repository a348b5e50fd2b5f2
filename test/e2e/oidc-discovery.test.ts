// A standard OIDC relying-party stack against a real local issuer (wrangler dev), as a cloud validates
// Wisp's JWT-SVIDs: openid-client discovers the issuer (.well-known/openid-configuration, issuer match
// enforced by the library), jose's remote JWKS (with its cooldown) verifies signature, iss, aud, exp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';

const TD = 'oidc.example';
const SUB = `spiffe://${TD}/ns/prod/sa/uploader`;
let root: string;
let issuer: RunningIssuer;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-oidc-'));
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
}, 180_000);

afterAll(async () => {
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a relying party using openid-client discovery and jose remote JWKS', () => {
  it('discovers the issuer and validates its JWT-SVIDs; refuses a wrong audience and a forged token', async () => {
    // http is only for this loopback issuer; clouds require https (config.ts enforces it outside localhost)
    const config = await oidc.discovery(new URL(issuer.url), 'sts.amazonaws.com', undefined, undefined, { execute: [oidc.allowInsecureRequests] });
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(issuer.url);
    expect(meta.jwks_uri).toBe(`${issuer.url}/keys`);
    expect(meta.id_token_signing_alg_values_supported).toEqual(['ES256']);

    const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/jwt-svids/mint', { spiffeId: SUB, audience: ['sts.amazonaws.com'], ttlSeconds: 300 });
    const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!), { cooldownDuration: 30_000, timeoutDuration: 5_000 });
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: meta.issuer, audience: 'sts.amazonaws.com', algorithms: meta.id_token_signing_alg_values_supported });
    expect(payload.sub).toBe(SUB);
    expect(payload.iat).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: expect.any(String) });
    const jwksDoc = (await (await fetch(meta.jwks_uri!)).json()) as { keys: Record<string, unknown>[] };
    expect(jwksDoc.keys.map((k) => k.kid)).toContain(decodeProtectedHeader(token).kid);

    await expect(jwtVerify(token, jwks, { issuer: meta.issuer, audience: 'api://AzureADTokenExchange' })).rejects.toThrow();
    const [h, p] = token.split('.');
    const forged = `${h}.${p}.${'A'.repeat(86)}`;
    await expect(jwtVerify(forged, jwks, { issuer: meta.issuer, audience: 'sts.amazonaws.com' })).rejects.toThrow();
  });
});
