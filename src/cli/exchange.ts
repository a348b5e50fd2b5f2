/**
 * `wisp exchange`: a platform-signed token (a CI job's OIDC token) exchanged at the issuer's token exchange
 * endpoint (docs/token-exchange.md) for a JWT-SVID, or, with `--csr FILE` or `--write DIR`, an X509-SVID.
 * No admin credential: the token is the credential. `--write` makes a P-256 key here (node:crypto; it never
 * leaves this machine) and its CSR with the agent's CSR template, then writes svid.pem, svid_key.pem (0600)
 * and svid_bundle.pem as spiffe-helper names them.
 * @module
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { WispError } from '../shared/errors.js';
import { decodeBase64, toBase64Url } from '../shared/encoding/base64.js';
import { derFromPem, looksLikePem, toPem } from '../shared/encoding/pem.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT, TOKEN_TYPE_X509_SVID, type ExchangeResponse } from '../shared/exchange/request.js';
import { p256Csr, p256CsrInfo, p256SpkiFromPkcs8 } from '../shared/spiffe/csr-template.js';
import { PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeOutputFiles } from '../node/file-output.js';
import { httpRequest, HttpRequestError } from '../node/http-request.js';
import { codeForStatus, parseJsonBody } from '../node/issuer-response.js';
import type { LeafBuilder } from './command.js';
import { CliUsageError, type CommandContext } from './context.js';
import { collect, parseSpiffeIdFlag, requireFlag } from './flags.js';

const MAX_RESPONSE_BYTES = 256 * 1024;

/** A new P-256 key (PKCS#8 DER) and its CSR (no SAN: the issuer takes the identity from the entry). */
export function newKeyAndCsr(): { pkcs8: Uint8Array; csr: Uint8Array } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pkcs8 = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  const info = p256CsrInfo(p256SpkiFromPkcs8(pkcs8));
  // node:crypto's default ECDSA encoding is the DER ECDSA-Sig-Value a CSR carries
  return { pkcs8, csr: p256Csr(info, new Uint8Array(sign('sha256', info, privateKey))) };
}

function readCsrFile(path: string): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CliUsageError(`cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const text = bytes.toString('latin1');
  return looksLikePem(text) ? derFromPem(text, 'CERTIFICATE REQUEST', `--csr ${path}`) : new Uint8Array(bytes);
}

/** POSTs the form; an RFC 6749 §5.2 refusal becomes a one-line WispError naming the RFC's error code. */
async function postExchange(ctx: CommandContext, form: URLSearchParams): Promise<ExchangeResponse> {
  const { serverUrl, timeoutSeconds } = ctx.config();
  const url = new URL('/exchange/v1/token', serverUrl);
  let res;
  try {
    res = await httpRequest({
      url,
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new TextEncoder().encode(form.toString()),
      timeoutMs: timeoutSeconds * 1000,
      maxResponseBytes: MAX_RESPONSE_BYTES,
    });
  } catch (e) {
    const reason = e instanceof HttpRequestError ? (e.kind === 'timeout' ? `no answer within ${timeoutSeconds}s` : (e.code ?? e.message)) : String(e);
    throw new WispError('ERR_UNAVAILABLE', `cannot reach the issuer at ${serverUrl} (${reason})`);
  }
  const json = parseJsonBody(res.text) as (Partial<ExchangeResponse> & { error?: unknown; error_description?: unknown }) | undefined;
  if (res.status !== 200) {
    const what = typeof json?.error === 'string' ? `${json.error}: ${typeof json.error_description === 'string' ? json.error_description : ''}` : `HTTP ${res.status} ${res.statusText}`;
    throw new WispError(res.status === 429 ? 'ERR_RATE_LIMITED' : codeForStatus(res.status), `token exchange refused: ${what.trim()}`);
  }
  if (typeof json?.access_token !== 'string') throw new WispError('ERR_UNAVAILABLE', 'the issuer answered without an access_token');
  return json as ExchangeResponse;
}

export function registerExchangeCommand(program: Command, leaf: LeafBuilder): void {
  const exchange = leaf(program, 'exchange', 'Exchanges a platform-signed token (OIDC) for a JWT-SVID or an X509-SVID (RFC 8693, no agent)', [
    'wisp exchange --serverURL https://wisp.example.org --token-file "$OIDC_TOKEN_FILE" --audience https://deploy.example.com',
    'wisp exchange --serverURL https://wisp.example.org --token-file - --write ./svid < token',
  ]);
  exchange.command
    .option('--token-file <file>', 'the subject token (an OIDC ID token or JWT); - for stdin')
    .option('--audience <aud>', 'audience of the JWT-SVID; repeatable', collect)
    .option('--scope <spiffeID>', 'the SPIFFE ID asked for, when several entries authorize the token')
    .option('--csr <file>', 'a PKCS#10 CSR (PEM or DER): ask for an X509-SVID for its key')
    .option('--write <dir>', 'an X509-SVID for a key made here: write svid.pem, svid_key.pem and svid_bundle.pem to dir');
  exchange.action(async (ctx, opts) => {
    const tokenFile = requireFlag('--token-file', opts['tokenFile'] as string | undefined);
    const audience = (opts['audience'] as string[] | undefined) ?? [];
    const csrFile = opts['csr'] as string | undefined;
    const dir = opts['write'] as string | undefined;
    const scope = opts['scope'] === undefined ? undefined : parseSpiffeIdFlag('--scope', opts['scope'] as string);
    const x509 = csrFile !== undefined || dir !== undefined;
    if (x509 && audience.length > 0) throw new CliUsageError('--audience is for a JWT-SVID; --csr and --write ask for an X509-SVID');
    if (!x509 && audience.length === 0) throw new CliUsageError('--audience is required for a JWT-SVID (or --csr / --write for an X509-SVID)');
    if (csrFile !== undefined && dir !== undefined) throw new CliUsageError('--write makes its own key and CSR; give --csr or --write, not both');
    const token = (await ctx.readInput(tokenFile)).trim();
    if (token === '') throw new CliUsageError(`${tokenFile === '-' ? 'stdin' : tokenFile} holds no token`);
    const generated = dir !== undefined ? newKeyAndCsr() : undefined;
    const csr = generated?.csr ?? (csrFile !== undefined ? readCsrFile(csrFile) : undefined);
    const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token, subject_token_type: TOKEN_TYPE_ID_TOKEN });
    if (csr) {
      form.set('requested_token_type', TOKEN_TYPE_X509_SVID);
      form.set('csr', toBase64Url(csr));
    } else {
      form.set('requested_token_type', TOKEN_TYPE_JWT);
      for (const a of audience) form.append('audience', a);
    }
    if (scope) form.set('scope', scope);
    const res = await postExchange(ctx, form);
    if (!csr) {
      if (ctx.output === 'json') return ctx.printJson(res);
      return ctx.print(res.access_token);
    }
    const bundlePem = (res.x509_bundle ?? []).map((b64) => toPem('CERTIFICATE', decodeBase64(b64) ?? new Uint8Array())).join('');
    if (generated && dir) {
      const files = await writeOutputFiles(dir, [
        { name: 'svid.pem', data: res.access_token, mode: PUBLIC_FILE_MODE },
        { name: 'svid_key.pem', data: toPem('PRIVATE KEY', generated.pkcs8), mode: PRIVATE_FILE_MODE },
        { name: 'svid_bundle.pem', data: bundlePem, mode: PUBLIC_FILE_MODE },
      ]);
      if (ctx.output === 'json') return ctx.printJson({ ...res, files });
      return ctx.print(`X509-SVID written to ${dir} (svid.pem, svid_key.pem, svid_bundle.pem), expires in ${res.expires_in}s`);
    }
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.io.stdout(res.access_token);
  });
}
