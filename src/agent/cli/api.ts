/**
 * `wisp-agent api …` and `wisp-agent healthcheck`: Workload API calls over the agent's socket, made the way
 * any workload makes them (gRPC with the `workload.spiffe.io` header, through workload-api/client.ts).
 * SPIRE's `spire-agent api` is the model: `fetch x509 -write DIR` writes svid.N.pem, svid.N.key and
 * bundle.N.pem. Output is human-readable, or JSON with `--output json`.
 * @module
 */
import { join } from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { toPem } from '../../shared/encoding/pem.js';
import { PRIVATE_FILE_MODE, writeOutputFiles } from '../../node/file-output.js';
import { certificateInfo } from '../keys.js';
import { RATE_LIMIT_EXCEEDED } from '../workload-api/rate-limit.js';
import { createWorkloadApiClient, isGrpcError, type WorkloadApiClient } from '../../node/workload-api/client.js';

export type OutputFormat = 'pretty' | 'json';

export interface ApiCommandOptions {
  /** a socket path or unix:// address (flag, else SPIFFE_ENDPOINT_SOCKET, else the agent default) */
  address: string;
  output: OutputFormat;
  timeoutMs: number;
  /** where results go (process.stdout) */
  print: (line: string) => void;
}

/** Splits concatenated DER values (the Workload API's chain and bundle fields) into single DER values. */
export function splitDer(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] !== 0x30 || i + 2 > bytes.length) throw new Error('malformed DER sequence');
    let len = bytes[i + 1]!;
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || i + 2 + n > bytes.length) throw new Error('malformed DER length');
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + bytes[i + 2 + k]!;
      header = 2 + n;
    }
    const end = i + header + len;
    if (end > bytes.length) throw new Error('truncated DER value');
    out.push(bytes.slice(i, end));
    i = end;
  }
  return out;
}

async function withClient<T>(o: ApiCommandOptions, fn: (client: WorkloadApiClient, signal: AbortSignal) => Promise<T>): Promise<T> {
  const client = createWorkloadApiClient(o.address);
  const signal = AbortSignal.timeout(o.timeoutMs);
  try {
    return await fn(client, signal);
  } finally {
    client.close();
  }
}

async function first<T>(stream: AsyncIterable<T>, signal: AbortSignal): Promise<T> {
  for await (const message of stream) return message;
  throw new Error(signal.aborted ? 'no answer from the agent before the timeout' : 'the agent closed the stream without an answer');
}

const iso = (ms: number) => new Date(ms).toISOString();

function describeX509(svids: Array<{ spiffeId: string; x509Svid: Uint8Array; hint: string }>) {
  return svids.map((s) => {
    const chain = splitDer(s.x509Svid);
    const info = certificateInfo(chain[0]!);
    return { spiffeId: s.spiffeId, hint: s.hint, expiresAt: iso(info.notAfter), chainLength: chain.length };
  });
}

/** `api fetch x509 [--write DIR]` */
export async function fetchX509(o: ApiCommandOptions & { writeDir?: string }): Promise<void> {
  const res = await withClient(o, (c, signal) => first(c.fetchX509SVID({ signal }), signal));
  const described = describeX509(res.svids);
  if (o.writeDir) {
    const certs = (der: Uint8Array) => splitDer(der).map((d) => toPem('CERTIFICATE', d)).join('');
    const mode = PRIVATE_FILE_MODE; // every file 0600, as before: the directory is the agent user's
    await writeOutputFiles(o.writeDir, [
      ...res.svids.flatMap((s, i) => [
        { name: `svid.${i}.pem`, data: certs(s.x509Svid), mode },
        { name: `svid.${i}.key`, data: toPem('PRIVATE KEY', s.x509SvidKey), mode },
        { name: `bundle.${i}.pem`, data: certs(s.bundle), mode },
      ]),
      ...Object.entries(res.federatedBundles).map(([td, bundle], j) => ({ name: `federated_bundle.${j}.pem`, data: `# ${td}\n${certs(bundle)}`, mode })),
    ]);
  }
  if (o.output === 'json') {
    o.print(JSON.stringify({ svids: described, federatedTrustDomains: Object.keys(res.federatedBundles), ...(o.writeDir ? { writtenTo: o.writeDir } : {}) }));
    return;
  }
  o.print(`Received ${described.length} svid${described.length === 1 ? '' : 's'}`);
  for (const [i, d] of described.entries()) {
    o.print(`\nSPIFFE ID:\t${d.spiffeId}\nExpires at:\t${d.expiresAt}${d.hint ? `\nHint:\t\t${d.hint}` : ''}`);
    if (o.writeDir) o.print(`Written to:\t${join(o.writeDir, `svid.${i}.pem`)}, svid.${i}.key, bundle.${i}.pem`);
  }
}

/** `api fetch jwt --audience A [--spiffeID ID]` */
export async function fetchJwt(o: ApiCommandOptions & { audience: string[]; spiffeId?: string }): Promise<void> {
  const res = await withClient(o, (c, signal) => c.fetchJWTSVID({ audience: o.audience, ...(o.spiffeId ? { spiffeId: o.spiffeId } : {}) }, { signal, timeoutMs: o.timeoutMs }));
  if (o.output === 'json') {
    o.print(JSON.stringify({ svids: res.svids.map((s) => ({ spiffeId: s.spiffeId, svid: s.svid, hint: s.hint })) }));
    return;
  }
  for (const s of res.svids) o.print(`token(${s.spiffeId}):\n\t${s.svid}`);
}

/** `api fetch jwtbundles` */
export async function fetchJwtBundles(o: ApiCommandOptions): Promise<void> {
  const res = await withClient(o, (c, signal) => first(c.fetchJWTBundles({ signal }), signal));
  const bundles = Object.fromEntries(Object.entries(res.bundles).map(([td, jwks]) => [td, JSON.parse(new TextDecoder().decode(jwks)) as unknown]));
  if (o.output === 'json') {
    o.print(JSON.stringify(bundles));
    return;
  }
  for (const [td, jwks] of Object.entries(bundles)) o.print(`bundle(${td}):\n\t${JSON.stringify(jwks)}`);
}

/** `api validate jwt --audience A --svid TOKEN` */
export async function validateJwt(o: ApiCommandOptions & { audience: string; svid: string }): Promise<void> {
  const res = await withClient(o, (c, signal) => c.validateJWTSVID({ audience: o.audience, svid: o.svid }, { signal, timeoutMs: o.timeoutMs }));
  if (o.output === 'json') {
    o.print(JSON.stringify({ spiffeId: res.spiffeId, claims: res.claims ?? {} }));
    return;
  }
  o.print(`SVID is valid.\nSPIFFE ID : ${res.spiffeId}\nClaims    : ${JSON.stringify(res.claims ?? {})}`);
}

/** `api watch`: prints every X509-SVID update until `signal` aborts. */
export async function watchX509(o: ApiCommandOptions, signal: AbortSignal): Promise<void> {
  const client = createWorkloadApiClient(o.address);
  try {
    for await (const res of client.fetchX509SVID({ signal })) {
      const described = describeX509(res.svids);
      if (o.output === 'json') o.print(JSON.stringify({ receivedAt: new Date().toISOString(), svids: described }));
      else o.print(`Received ${described.length} svid(s) at ${new Date().toISOString()}: ${described.map((d) => `${d.spiffeId} (expires ${d.expiresAt})`).join(', ')}`);
    }
  } finally {
    client.close();
  }
}

/**
 * `healthcheck`: the agent is healthy when it answers FetchX509Bundles: with bundles, or with
 * PermissionDenied (the caller simply has no identity), or with its rate-limit refusal (given only after the
 * agent is ready and has attested the caller: the probe is exempt in effect, as SPIRE's). Any other
 * Unavailable (not attested/synced yet), a refused connection or a timeout is unhealthy.
 */
export async function healthcheck(o: Omit<ApiCommandOptions, 'output' | 'print'>): Promise<{ healthy: boolean; detail: string }> {
  try {
    await withClient({ ...o, output: 'json', print: () => undefined }, (c, signal) => first(c.fetchX509Bundles({ signal }), signal));
    return { healthy: true, detail: 'agent is ready' };
  } catch (e) {
    if (isGrpcError(e, GrpcStatus.PERMISSION_DENIED)) return { healthy: true, detail: 'agent is ready (caller has no identity)' };
    if (isGrpcError(e, GrpcStatus.UNAVAILABLE) && e.details.startsWith(RATE_LIMIT_EXCEEDED)) return { healthy: true, detail: 'agent is ready (caller is rate-limited)' };
    return { healthy: false, detail: isGrpcError(e) ? e.details || e.message : (e as Error).message };
  }
}
