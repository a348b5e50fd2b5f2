import { createExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { WispError } from '../../src/shared/errors.js';
import { parseCaConfig, parseRateLimitsConfig, parseWorkerConfig, type WorkerConfigEnv } from '../../src/worker/config.js';
import { RATE_LIMIT_DEFAULTS } from '../../src/worker/ca/rate-limits.js';
import worker from '../../src/worker/index.js';

const valid: WorkerConfigEnv = {
  TRUST_DOMAIN: 'example.org',
  JWT_ISSUER: 'https://wisp.example.org',
  ADMIN_TOKEN: 'a'.repeat(32),
  KEY_ENCRYPTION_SECRET: 'k'.repeat(32),
};

function configError(overrides: Partial<WorkerConfigEnv>): string {
  try {
    parseWorkerConfig({ ...valid, ...overrides });
  } catch (e) {
    expect(e).toBeInstanceOf(WispError);
    expect((e as WispError).code).toBe('ERR_CONFIG_INVALID');
    return (e as WispError).message;
  }
  throw new Error('expected a configuration error');
}

describe('parseWorkerConfig', () => {
  it('applies SPIRE-like defaults', () => {
    const config = parseWorkerConfig(valid);
    expect(config).toMatchObject({ caTtlSeconds: 86400, x509SvidTtlSeconds: 3600, jwtSvidTtlSeconds: 300, jwtKeyType: 'ES256', jwksMaxAgeSeconds: 300 });
  });

  it.each([
    [{ TRUST_DOMAIN: 'Example.org' }, /^TRUST_DOMAIN: /],
    [{ TRUST_DOMAIN: undefined }, /^TRUST_DOMAIN: /],
    [{ JWT_ISSUER: 'http://wisp.example.org' }, /^JWT_ISSUER: must be https/],
    [{ JWT_ISSUER: 'not a url' }, /^JWT_ISSUER: /],
    [{ CA_TTL: 'forever' }, /^CA_TTL: "forever" is not a duration/],
    [{ X509_SVID_TTL: '0s' }, /^X509_SVID_TTL: must be at least/],
    [{ JWT_KEY_TYPE: 'HS256' }, /^JWT_KEY_TYPE: must be ES256 or RS256/],
    [{ JWKS_MAX_AGE: '9h' }, /^JWKS_MAX_AGE: must be shorter than a third of CA_TTL/],
    [{ ADMIN_TOKEN: undefined }, /^ADMIN_TOKEN: secret is not set/],
    [{ KEY_ENCRYPTION_SECRET: 'short' }, /^KEY_ENCRYPTION_SECRET: must be at least 32/],
    [{ UPSTREAM_CA_KEY: 'x' }, /^UPSTREAM_CA_CERT_CHAIN: /],
  ])('names the bad key: %j', (overrides, message) => {
    expect(configError(overrides)).toMatch(message);
  });

  it('accepts http only for a loopback issuer URL', () => {
    expect(parseWorkerConfig({ ...valid, JWT_ISSUER: 'http://127.0.0.1:8787/' }).jwtIssuer).toBe('http://127.0.0.1:8787');
    // the one loopback rule (src/shared/net/loopback.ts): all of 127.0.0.0/8, not *.localhost
    expect(parseWorkerConfig({ ...valid, JWT_ISSUER: 'http://127.0.0.2:8787' }).jwtIssuer).toBe('http://127.0.0.2:8787');
    expect(() => parseWorkerConfig({ ...valid, JWT_ISSUER: 'http://wisp.localhost' })).toThrow(/^JWT_ISSUER: must be https/);
    expect(() => parseWorkerConfig({ ...valid, JWT_ISSUER: 'http://issuer.example' })).toThrow(/^JWT_ISSUER: must be https/);
  });
});

describe('parseCaConfig', () => {
  it('parses only what the CA Durable Object needs, with the same defaults and errors', () => {
    const ca = parseCaConfig({ TRUST_DOMAIN: 'example.org', KEY_ENCRYPTION_SECRET: 'k'.repeat(32), JWT_ISSUER: 'https://wisp.example.org/' });
    expect(ca).toEqual({
      trustDomain: 'example.org',
      caSubject: 'O=Wisp,CN=Wisp CA',
      caTtlSeconds: 86400,
      x509SvidTtlSeconds: 3600,
      jwtSvidTtlSeconds: 300,
      jwtKeyType: 'ES256',
      jwksMaxAgeSeconds: 300,
      jwtIssuer: 'https://wisp.example.org',
      keyEncryptionSecret: 'k'.repeat(32),
      upstreamCa: undefined,
    });
    const { adminToken: _a, agentRequestMaxSkewSeconds: _s, nodeAttestors: _n, auditRetentionSeconds: _r, ...caPart } = parseWorkerConfig(valid);
    expect(parseCaConfig(valid)).toEqual(caPart);
    expect(() => parseCaConfig({ TRUST_DOMAIN: 'example.org' })).toThrow(/^KEY_ENCRYPTION_SECRET: secret is not set/);
    // the CA sets `iss` on every JWT-SVID: the issuer URL is part of its config
    expect(() => parseCaConfig({ TRUST_DOMAIN: 'example.org', KEY_ENCRYPTION_SECRET: 'k'.repeat(32) })).toThrow(/^JWT_ISSUER: is required/);
    expect(() => parseCaConfig({ ...valid, CA_TTL: '1h', JWKS_MAX_AGE: '30m' })).toThrow(/^JWKS_MAX_AGE: must be shorter than a third of CA_TTL \(1200s\)/);
    expect(() => parseCaConfig({ ...valid, UPSTREAM_CA_CERT_CHAIN: 'pem' })).toThrow(/^UPSTREAM_CA_KEY: upstream CA needs both/);
    expect(parseCaConfig({ ...valid, UPSTREAM_CA_CERT_CHAIN: 'c', UPSTREAM_CA_KEY: 'k' }).upstreamCa).toEqual({ certChainPem: 'c', keyPem: 'k' });
  });

  it('leaves an empty cloud attestor var disabled and refuses one that is not an object', () => {
    expect(parseWorkerConfig({ ...valid, AWS_IID: '', GCP_IIT: '' }).nodeAttestors).toEqual({});
    expect(configError({ AZURE_MSI: '{' })).toBe('AZURE_MSI: must be a JSON object');
    expect(configError({ AWS_IID: '{"certificates":["pem"]}' })).toBe('AWS_IID.certificates: must map regions to PEM certificates');
    expect(configError({ AWS_IID: '{"certificates":{"US_EAST":"pem"}}' })).toBe('AWS_IID.certificates.US_EAST: must be a region name mapped to a PEM certificate');
    expect(configError({ CA_TTL: '11000d' })).toBe('CA_TTL: must be at most 10 years');
  });
});

describe('RATE_LIMITS', () => {
  it('defaults to the rates of SPIRE with large bursts; a kind left out or a burst left out keeps its default', () => {
    expect(parseRateLimitsConfig({})).toEqual({
      attestation: { ratePerSecond: 1, burst: 100 },
      x509Signing: { ratePerSecond: 500, burst: 200_000 },
      jwtSigning: { ratePerSecond: 500, burst: 1_000_000 },
    });
    expect(parseRateLimitsConfig({ RATE_LIMITS: '' })).toEqual(RATE_LIMIT_DEFAULTS);
    expect(parseRateLimitsConfig({ RATE_LIMITS: '{"attestation":{"ratePerSecond":0.5,"burst":3},"jwtSigning":{"ratePerSecond":0}}' })).toEqual({
      ...RATE_LIMIT_DEFAULTS,
      attestation: { ratePerSecond: 0.5, burst: 3 },
      jwtSigning: { ratePerSecond: 0, burst: 1 },
    });
    // SPIRE's own: burst = rate
    expect(parseRateLimitsConfig({ RATE_LIMITS: '{"x509Signing":{"ratePerSecond":500}}' }).x509Signing).toEqual({ ratePerSecond: 500, burst: 500 });
  });

  it('refuses a bad RATE_LIMITS with one line naming the key, in the Worker and the CA alike', () => {
    expect(configError({ RATE_LIMITS: '{' })).toBe('RATE_LIMITS: must be a JSON object');
    expect(configError({ RATE_LIMITS: '[]' })).toBe('RATE_LIMITS: must be a JSON object');
    expect(configError({ RATE_LIMITS: '{"signing":{}}' })).toBe('RATE_LIMITS.signing: unknown key; known keys: attestation, x509Signing, jwtSigning');
    expect(configError({ RATE_LIMITS: '{"attestation":1}' })).toBe('RATE_LIMITS.attestation: must be an object {"ratePerSecond": n, "burst": n}');
    expect(configError({ RATE_LIMITS: '{"attestation":{"burst":2}}' })).toBe('RATE_LIMITS.attestation.ratePerSecond: is required');
    expect(configError({ RATE_LIMITS: '{"attestation":{"ratePerSecond":"1"}}' })).toBe('RATE_LIMITS.attestation.ratePerSecond: must be a number (0 = unlimited)');
    expect(configError({ RATE_LIMITS: '{"attestation":{"ratePerSecond":-1}}' })).toBe('RATE_LIMITS.attestation.ratePerSecond: must be at least 0 (0 = unlimited)');
    expect(configError({ RATE_LIMITS: '{"attestation":{"ratePerSecond":1,"burst":1.5}}' })).toBe('RATE_LIMITS.attestation.burst: must be a whole number');
    expect(configError({ RATE_LIMITS: '{"attestation":{"ratePerSecond":1,"rate":2}}' })).toBe('RATE_LIMITS.attestation.rate: unknown key; known keys: ratePerSecond, burst');
    expect(configError({ RATE_LIMITS: '{"x509Signing":{"ratePerSecond":100}}' })).toBe('RATE_LIMITS.x509Signing: burst must be at least 256 (the most SVIDs signed in one CA call)');
    expect(() => parseCaConfig({ ...valid, RATE_LIMITS: '{' })).toThrow(/^RATE_LIMITS: must be a JSON object$/);
  });
});

describe('the Worker with a bad configuration', () => {
  it('answers every request with one JSON error naming the key', async () => {
    const broken = { ...env, ADMIN_TOKEN: '' } as Env;
    const res = await worker.fetch(new Request('http://issuer.test/healthz'), broken, createExecutionContext());
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: 'ERR_CONFIG_INVALID', message: expect.stringMatching(/^ADMIN_TOKEN: /) } });
  });
});

describe('a CA that cannot publish keys', () => {
  it('answers 503 ERR_CA_NOT_READY on the public endpoints, never a bare 500', async () => {
    const { createApp } = await import('../../src/worker/app.js');
    const { depsFromEnv } = await import('../../src/worker/index.js');
    const deps = depsFromEnv(env);
    // a failed RPC, and the DO's own not-ready Result
    const failures = [
      () => Promise.reject(new Error('no active key (rotation failed)')),
      async () => ({ ok: false as const, error: { code: 'ERR_CA_NOT_READY' as const, message: 'the trust domain CA is not ready' } }),
    ];
    for (const getPublishedKeys of failures) {
      const broken = { ...deps, ca: () => ({ ...deps.ca(), getPublishedKeys, status: async () => ({ ready: false }) }) };
      const app = createApp(broken);
      for (const path of ['/keys', '/bundle', '/.well-known/openid-configuration']) {
        const res = await app.request(path, {}, env);
        expect(res.status, path).toBe(503);
        expect(await res.json()).toEqual({ error: { code: 'ERR_CA_NOT_READY', message: 'the trust domain CA is not ready' } });
      }
    }
  });
});
