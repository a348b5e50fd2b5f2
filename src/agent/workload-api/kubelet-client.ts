/**
 * The kubelet's authenticated pods API (`GET <kubeletUrl>/pods`, port 10250) for the k8s workload attestor.
 * TLS is verified with `kubeletCa` unless `skipKubeletVerification`; the agent authenticates with a client
 * certificate, or with a bearer token (the service account's) which the kubelet checks by TokenReview and a
 * SubjectAccessReview for `nodes/proxy`. Credential files are read on every request, so rotated tokens and
 * certificates are picked up (SPIRE reloads them every minute). Every failure is a WispError ERR_UNAVAILABLE
 * whose message says what to fix; the token never appears in one.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { WispError } from '../../shared/errors.js';
import { httpRequest, HttpRequestError, type HttpRequest } from '../../node/http-request.js';

export type KubeletAuth = { tokenPath: string } | { certificatePath: string; privateKeyPath: string };

export interface KubeletClientOptions {
  /** `https://<node>:10250`, no trailing slash */
  url: string;
  /** PEM file of the CA that signed the kubelet's serving certificate; ignored with skipVerification */
  caPath: string;
  skipVerification: boolean;
  auth: KubeletAuth;
  /** the whole request (SPIRE: 10 s) */
  timeoutMs: number;
}

/** Largest pod list read (a full node, 110 pods of a few KB each, is far below it). */
const MAX_POD_LIST_BYTES = 32 * 1024 * 1024;

/** TLS verification failures, by Node's error code. */
const TLS_CODES = /^(?:UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_|ERR_TLS_CERT_ALTNAME_INVALID|ERR_SSL_)/;

function kubeletError(message: string, cause?: unknown): WispError {
  return new WispError('ERR_UNAVAILABLE', `workload attestation failed: kubelet: ${message}`, cause === undefined ? undefined : { cause });
}

async function readCredential(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw kubeletError(`cannot read the ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, e);
  }
}

export interface KubeletClient {
  /** The pods API's body (a v1 PodList as JSON text). */
  listPods(): Promise<string>;
}

/**
 * @example
 * const kubelet = createKubeletClient({ url: 'https://node-1:10250', caPath, skipVerification: false, auth: { tokenPath }, timeoutMs: 10_000 });
 * const text = await kubelet.listPods();
 */
export function createKubeletClient(o: KubeletClientOptions): KubeletClient {
  const url = new URL(`${o.url}/pods`);
  return {
    async listPods() {
      const tls: NonNullable<HttpRequest['tls']> = o.skipVerification ? { rejectUnauthorized: false } : { ca: await readCredential(o.caPath, 'kubelet CA file'), rejectUnauthorized: true };
      const headers: Record<string, string> = { accept: 'application/json' };
      if ('tokenPath' in o.auth) {
        const token = (await readCredential(o.auth.tokenPath, 'token file')).trim();
        if (!token) throw kubeletError(`the token file ${o.auth.tokenPath} is empty`);
        if (!/^[\x21-\x7e]+$/.test(token)) throw kubeletError(`the token file ${o.auth.tokenPath} holds characters no bearer token has`);
        headers.authorization = `Bearer ${token}`;
      } else {
        tls.cert = await readCredential(o.auth.certificatePath, 'client certificate file');
        tls.key = await readCredential(o.auth.privateKeyPath, 'client key file');
      }
      let res;
      try {
        res = await httpRequest({ url, method: 'GET', headers, timeoutMs: o.timeoutMs, maxResponseBytes: MAX_POD_LIST_BYTES, tls });
      } catch (e) {
        if (e instanceof HttpRequestError && e.code && TLS_CODES.test(e.code)) {
          throw kubeletError(`cannot verify the kubelet's certificate at ${o.url} with the kubelet CA ${o.caPath} (${e.code})`, e);
        }
        if (e instanceof HttpRequestError && e.kind === 'timeout') throw kubeletError(`no answer from ${o.url} within ${o.timeoutMs} ms`, e);
        throw kubeletError(`${o.url}: ${(e as Error).message}`, e);
      }
      if (res.status === 401) {
        throw kubeletError(`${o.url} refused the agent's credentials (HTTP 401 Unauthorized): check the token or client certificate the kubelet accepts`);
      }
      if (res.status === 403) {
        throw kubeletError(`${o.url} denied listing pods (HTTP 403 Forbidden): the agent's identity needs "get" on nodes/proxy (a ClusterRole and binding)`);
      }
      if (res.status !== 200) throw kubeletError(`${o.url}/pods answered HTTP ${res.status} ${res.statusText}`.trimEnd());
      return res.text;
    },
  };
}
