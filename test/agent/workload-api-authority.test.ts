// The `:authority` shim below nghttp2 (src/agent/workload-api/authority.ts), byte for byte: header blocks are
// made and read back with hpack.js, framed per RFC 9113; the java-spiffe e2e test runs it against grpc-java.
import hpack, { type HpackHeader } from 'hpack.js';
import http2 from 'node:http2';
import { describe, expect, it } from 'vitest';
import { AuthorityRewriter, REWRITTEN_AUTHORITY, isAcceptedAuthority } from '../../src/agent/workload-api/authority.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const SETTINGS = frame(0x4, 0, 0, Buffer.alloc(0));

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

function request(authority: string, extra: HpackHeader[] = []): HpackHeader[] {
  return [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: '/SpiffeWorkloadAPI/FetchX509SVID' },
    { name: ':authority', value: authority },
    { name: 'content-type', value: 'application/grpc' },
    { name: 'workload.spiffe.io', value: 'true' },
    ...extra,
  ];
}

/** a client's encoder (one per connection, its dynamic table kept across blocks) */
function clientEncoder() {
  const enc = hpack.compressor.create({ table: { maxSize: 4096 } });
  return (headers: HpackHeader[]) => {
    enc.write(headers);
    return enc.read() as Buffer;
  };
}

/** parses what the rewriter passed on: frames after the preface, header blocks decoded as nghttp2 would */
function parse(out: Buffer) {
  expect(out.subarray(0, PREFACE.length).equals(PREFACE)).toBe(true);
  const dec = hpack.decompressor.create({ table: { maxSize: 4096 } });
  const frames: { type: number; flags: number; streamId: number; length: number }[] = [];
  const blocks: HpackHeader[][] = [];
  let pending: Buffer[] = [];
  for (let at = PREFACE.length; at < out.length; ) {
    const length = out.readUIntBE(at, 3);
    const [type, flags] = [out[at + 3]!, out[at + 4]!];
    const payload = out.subarray(at + 9, at + 9 + length);
    frames.push({ type, flags, streamId: out.readUInt32BE(at + 5), length });
    if (type === 0x1 || type === 0x9) {
      let p = payload;
      if (type === 0x1 && flags & 0x8) p = p.subarray(1, p.length - p[0]!);
      if (type === 0x1 && flags & 0x20) p = p.subarray(5);
      pending.push(p);
      if (flags & 0x4) {
        dec.write(Buffer.concat(pending));
        dec.execute();
        const headers: HpackHeader[] = [];
        for (let h = dec.read() as HpackHeader | null; h; h = dec.read() as HpackHeader | null) headers.push({ name: h.name, value: h.value });
        blocks.push(headers);
        pending = [];
      }
    }
    at += 9 + length;
  }
  return { frames, blocks };
}

function run(chunks: Buffer[], chunkSize?: number) {
  const out: Buffer[] = [];
  const rw = new AuthorityRewriter((c) => out.push(Buffer.from(c)));
  const all = Buffer.concat(chunks);
  const step = chunkSize ?? all.length;
  for (let at = 0; at < all.length; at += step) rw.write(all.subarray(at, at + step));
  return { out: Buffer.concat(out), rw };
}

describe('isAcceptedAuthority (the characters nghttp2 takes in :authority)', () => {
  it.each([
    ['localhost', true],
    ['127.0.0.1:8081', true],
    ['[::1]:443', true],
    ['user@host', true],
    ['%2Frun%2Fagent.sock', true],
    ['', true],
    ['/run/wisp-agent/api.sock', false],
    ['host name', false],
    ['a?b', false],
    ['a#b', false],
  ])('%j → %s', (value, ok) => expect(isAcceptedAuthority(value)).toBe(ok));
});

describe('AuthorityRewriter', () => {
  it('passes a client with an acceptable :authority through byte for byte, and stops parsing', () => {
    const enc = clientEncoder();
    const input = [PREFACE, SETTINGS, frame(0x1, 0x4, 1, enc(request('localhost'))), frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0])), Buffer.from('not even a frame')];
    for (const size of [undefined, 1, 7]) {
      const { out, rw } = run(input, size);
      expect(out.equals(Buffer.concat(input))).toBe(true);
      expect(rw.rewriting).toBe(false);
    }
  });

  it('rewrites a path :authority to localhost in every header block, through the dynamic table, whatever the chunking', () => {
    const enc = clientEncoder();
    const path = '/run/wisp-agent/api.sock';
    const blocks = [request(path), request(path, [{ name: 'x-b', value: 'two' }]), request(path)];
    const input = [PREFACE, SETTINGS, ...blocks.map((b, i) => frame(0x1, 0x4, 1 + 2 * i, enc(b))), frame(0x8, 0, 0, Buffer.from([0, 0, 0, 1]))];
    for (const size of [undefined, 1, 5, 100]) {
      const { out, rw } = run(input, size);
      expect(rw.rewriting).toBe(true);
      const { frames, blocks: got } = parse(out);
      expect(got).toEqual(blocks.map((b) => b.map((h) => ({ name: h.name, value: h.name === ':authority' ? REWRITTEN_AUTHORITY : h.value }))));
      expect(frames.map((f) => [f.type, f.streamId])).toEqual([[0x4, 0], [0x1, 1], [0x1, 3], [0x1, 5], [0x8, 0]]);
    }
  });

  it('reads PADDED and PRIORITY HEADERS and CONTINUATION frames, and splits a large block into CONTINUATION frames', () => {
    const enc = clientEncoder();
    const big = Array.from({ length: 12 }, (_, i) => ({ name: `x-big-${i}`, value: `${i}`.repeat(2_000) }));
    const block = enc(request('/sock', big));
    expect(block.length).toBeGreaterThan(16_384);
    const padded = Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 15]), block.subarray(0, 10_000), Buffer.alloc(3)]);
    const input = [
      PREFACE,
      frame(0x1, 0x1 | 0x8 | 0x20, 1, padded), // END_STREAM, no END_HEADERS
      frame(0x9, 0, 1, block.subarray(10_000, 16_000)),
      frame(0x9, 0x4, 1, block.subarray(16_000)),
    ];
    const { out } = run(input);
    const { frames, blocks } = parse(out);
    expect(blocks[0]!.find((h) => h.name === ':authority')!.value).toBe(REWRITTEN_AUTHORITY);
    expect(blocks[0]!.filter((h) => h.name.startsWith('x-big'))).toEqual(big);
    expect(frames[0]).toMatchObject({ type: 0x1, streamId: 1 });
    expect(frames[0]!.flags & 0x20).toBe(0x20); // priority kept
    expect(frames[0]!.flags & 0x1).toBe(0x1); // END_STREAM kept
    expect(frames.slice(1).every((f) => f.type === 0x9 && f.length <= 16_384)).toBe(true);
    expect(frames.at(-1)!.flags & 0x4).toBe(0x4);
  });

  it('refuses a stream it cannot read: a frame inside a header block, a broken HPACK block', () => {
    const enc = clientEncoder();
    const block = enc(request('/sock'));
    expect(() => run([PREFACE, frame(0x1, 0, 1, block.subarray(0, 5)), frame(0x0, 0, 1, Buffer.alloc(1))])).toThrow(/inside a header block/);
    expect(() => run([PREFACE, frame(0x1, 0x4, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]))])).toThrow(/HPACK/);
  });

  it('leaves a connection that does not start with the HTTP/2 preface to nghttp2', () => {
    const input = [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')];
    const { out } = run(input, 3);
    expect(out.equals(Buffer.concat(input))).toBe(true);
  });

  it('what Node HTTP/2 client sends with a path :authority comes out as localhost', async () => {
    // a real encoder (nghttp2's, in Node's client) instead of hpack.js'
    const { createServer, connect } = await import('node:net');
    const captured: Buffer[] = [];
    const server = createServer((s) => s.on('data', (d: Buffer) => captured.push(d)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const session = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => connect(port, '127.0.0.1') });
    session.on('error', () => undefined);
    session.request({ ':method': 'POST', ':path': '/a', ':authority': '/run/agent.sock' }).on('error', () => undefined).end();
    session.request({ ':method': 'POST', ':path': '/b', ':authority': '/run/agent.sock' }).on('error', () => undefined).end();
    await new Promise((r) => setTimeout(r, 200));
    session.destroy();
    server.close();
    const { blocks } = parse(run(captured).out);
    expect(blocks.map((b) => [b.find((h) => h.name === ':path')!.value, b.find((h) => h.name === ':authority')!.value])).toEqual([
      ['/a', REWRITTEN_AUTHORITY],
      ['/b', REWRITTEN_AUTHORITY],
    ]);
  });
});
