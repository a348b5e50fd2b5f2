/**
 * A small OIDC token issuer for the token-exchange e2e test and bench: its own ES256 key (jose), and, served
 * on loopback by node:http, `/.well-known/openid-configuration` and the JWKS it names. Tokens are signed
 * here with the claims asked for.
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

export interface TokenSigner {
  kid: string;
  /** the public key set (what a TOKEN_EXCHANGE `jwks` holds inline) */
  jwks: { keys: JWK[] };
  /** a token with `claims` over sensible defaults (iat now, exp in 5 minutes, a random jti); iss and aud required */
  sign(claims: JWTPayload & { iss: string; aud: string | string[] }): Promise<string>;
}

export async function createTokenSigner(kid = 'test-oidc-key-1'): Promise<TokenSigner> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return {
    kid,
    jwks: { keys: [jwk] },
    sign(claims) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iat: now - 5, exp: now + 300, jti: crypto.randomUUID(), ...claims }).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(privateKey);
    },
  };
}

export interface OidcTokenIssuer extends TokenSigner {
  /** the issuer URL (`iss`), http://127.0.0.1:<port> */
  url: string;
  /** requests served, by path */
  served: Map<string, number>;
  /** a token of this issuer (`iss` set) for `aud` */
  token(aud: string, claims?: JWTPayload): Promise<string>;
  stop(): Promise<void>;
}

export async function startOidcTokenIssuer(): Promise<OidcTokenIssuer> {
  const signer = await createTokenSigner();
  const served = new Map<string, number>();
  let url = '';
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    served.set(path, (served.get(path) ?? 0) + 1);
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') return json({ issuer: url, jwks_uri: `${url}/jwks`, id_token_signing_alg_values_supported: ['ES256'] });
    if (req.method === 'GET' && path === '/jwks') return json(signer.jwks);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    ...signer,
    url,
    served,
    token: (aud, claims = {}) => signer.sign({ iss: url, aud, sub: 'test-subject', ...claims }),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
