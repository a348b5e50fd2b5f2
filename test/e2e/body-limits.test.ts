// Oversize chunked uploads against the real issuer under wrangler dev (issue 20): each answer is the
// Worker's 413 with the JSON error, never wrangler's proxy 503 ("worker restarted mid-request") or a reset
// connection. Before the fix about half of 2 MiB chunked uploads to /agent/v1/attest got the 503.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_API_LIMITS } from '../../src/shared/agent-api.js';
import { MAX_BUNDLE_BYTES } from '../../src/shared/spiffe/bundle.js';
import { MAX_JSON_BODY_BYTES } from '../../src/worker/http-json.js';
import { AGENT_SMALL_BODY_MAX_BYTES } from '../../src/worker/routes/agent.js';
import { startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';

const ROUNDS = 20;
const MiB = 1024 * 1024;
let root: string;
let issuer: RunningIssuer;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-body-limits-'));
  issuer = await startIssuer({ stateDir: join(root, 'issuer') });
}, 180_000);

afterAll(async () => {
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** POSTs `size` bytes with Transfer-Encoding: chunked (no content-length) in 64 KiB writes; any transport error is the answer. */
function postChunked(path: string, size: number, headers: Record<string, string>): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: issuer.port, path, method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
        res.on('error', (e) => resolve({ status: -1, contentType: '', body: String(e) }));
      },
    );
    req.on('error', (e) => resolve({ status: -1, contentType: '', body: String(e) }));
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
        sent += part.length;
        if (!req.write(part)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

function errorCodeOf(body: string): string {
  try {
    return (JSON.parse(body) as { error: { code: string } }).error.code;
  } catch {
    return `not JSON: ${body.slice(0, 100)}`;
  }
}

describe('oversize chunked uploads under wrangler dev', () => {
  const agentProof = { authorization: 'WispAgentProof x.y.z' };
  it.each<[string, number, 'agent' | 'admin' | 'none']>([
    ['/agent/v1/attest', AGENT_SMALL_BODY_MAX_BYTES, 'none'],
    ['/agent/v1/x509-svids', AGENT_API_LIMITS.MAX_BODY_BYTES, 'agent'],
    ['/agent/v1/federation/bundles', MAX_BUNDLE_BYTES, 'agent'],
    ['/admin/v1/entries', MAX_JSON_BODY_BYTES, 'admin'],
  ])(`POST %s: ${ROUNDS} of ${ROUNDS} get 413 with the JSON error`, async (path, limit, auth) => {
    const headers = auth === 'agent' ? agentProof : auth === 'admin' ? { authorization: `Bearer ${issuer.adminToken}` } : {};
    const answers: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const res = await postChunked(path, limit + 2 * MiB, headers);
      answers.push(`${res.status} ${res.contentType.split(';')[0]} ${errorCodeOf(res.body)}`);
    }
    expect(answers).toEqual(Array<string>(ROUNDS).fill('413 application/json ERR_REQUEST_TOO_LARGE'));
  });
});
