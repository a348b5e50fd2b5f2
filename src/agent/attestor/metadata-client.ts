/**
 * HTTP to a cloud instance metadata service (AWS IMDS, GCP metadata server, Azure IMDS): every request
 * has a timeout and a body cap, and failures become one clear WispError saying which service could not be
 * reached, so an agent started off-cloud says so instead of hanging.
 * @module
 */
import { WispError } from '../../shared/errors.js';

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
  let res: Response;
  try {
    res = await fetch(req.url, { method: req.method ?? 'GET', headers: req.headers, signal: AbortSignal.timeout(req.timeoutMs), redirect: 'error' });
  } catch (e) {
    const why = e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${req.timeoutMs} ms` : 'connection failed';
    throw new WispError('ERR_UNAVAILABLE', `${req.attestor}: ${req.service} at ${new URL(req.url).origin} is unreachable (${why}); is this agent running on that cloud?`);
  }
  const text = await res.text();
  if (!res.ok) throw new MetadataHttpError(`${req.attestor}: ${req.service} answered HTTP ${res.status} to ${new URL(req.url).pathname}`, res.status);
  if (text.length > METADATA_MAX_BYTES) throw new WispError('ERR_UNAVAILABLE', `${req.attestor}: ${req.service} answer is larger than ${METADATA_MAX_BYTES} bytes`);
  return text;
}
