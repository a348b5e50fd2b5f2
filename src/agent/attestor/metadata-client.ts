/**
 * HTTP to a cloud instance metadata service (AWS IMDS, GCP metadata server, Azure IMDS): every request
 * has a timeout and a body cap, and failures become one clear WispError saying which service could not be
 * reached, so an agent started off-cloud says so instead of hanging.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { httpRequest, HttpRequestError, type HttpResponse } from '../../node/http-request.js';

/** Largest metadata response read, bytes (documents and tokens are a few KB). */
export const METADATA_MAX_BYTES = 64 * 1024;

export interface MetadataRequest {
  /** e.g. `aws_iid` (error prefix) */
  attestor: string;
  /** e.g. `the EC2 instance metadata service` */
  service: string;
  url: string;
  method?: 'GET' | 'PUT';
  headers?: Record<string, string>;
  timeoutMs: number;
}

export class MetadataHttpError extends WispError {
  readonly status: number;
  constructor(message: string, status: number) {
    super('ERR_UNAVAILABLE', message);
    this.status = status;
  }
}

/** Returns the body as text; throws WispError ERR_UNAVAILABLE (MetadataHttpError for an HTTP status). */
export async function metadataRequest(req: MetadataRequest): Promise<string> {
  const url = new URL(req.url);
  let res: HttpResponse;
  try {
    res = await httpRequest({ url, method: req.method ?? 'GET', ...(req.headers ? { headers: req.headers } : {}), timeoutMs: req.timeoutMs, maxResponseBytes: METADATA_MAX_BYTES });
  } catch (e) {
    if (e instanceof HttpRequestError && e.kind === 'too-large') throw new WispError('ERR_UNAVAILABLE', `${req.attestor}: ${req.service} answer is larger than ${METADATA_MAX_BYTES} bytes`);
    const why = e instanceof HttpRequestError && e.kind === 'timeout' ? `no answer within ${req.timeoutMs} ms` : 'connection failed';
    throw new WispError('ERR_UNAVAILABLE', `${req.attestor}: ${req.service} at ${url.origin} is unreachable (${why}); is this agent running on that cloud?`);
  }
  if (res.status < 200 || res.status > 299) throw new MetadataHttpError(`${req.attestor}: ${req.service} answered HTTP ${res.status} to ${url.pathname}`, res.status);
  return res.text;
}
