// The `:authority` shim below nghttp2 (src/agent/workload-api/authority.ts), byte for byte: header blocks are
// made and read back with hpack.js, framed per RFC 9113; the java-spiffe e2e test runs it against grpc-java.
import hpack, { type HpackHeader } from 'hpack.js';
import { mkdtempSync } from 'node:fs';
import http2 from 'node:http2';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { AuthorityRewriter, EMPTY_SETTINGS, REWRITTEN_AUTHORITY, acceptConnection, isAcceptedAuthority } from '../../src/agent/workload-api/authority.js';

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

function run(chunks: Buffer[], chunkSize?: number, options?: { ownSettingsSent?: boolean }) {
  const out: Buffer[] = [];
  const rw = new AuthorityRewriter((c) => out.push(Buffer.from(c)), options);
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

  it("drops the client's first SETTINGS ACK (the ACK of the agent's own SETTINGS), before or after the first header block, and only that one", () => {
    const enc = clientEncoder();
    const ackFrame = frame(0x4, 0x1, 0, Buffer.alloc(0));
    const headers = frame(0x1, 0x4, 1, enc(request('localhost')));
    const data = frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0]));
    // grpc-go: ACK, then HEADERS; a client that does not wait: HEADERS, then the ACK; the second ACK is nghttp2's
    for (const input of [[PREFACE, SETTINGS, ackFrame, headers, data, ackFrame], [PREFACE, SETTINGS, headers, data, ackFrame, ackFrame]]) {
      for (const size of [undefined, 1, 4]) {
        const { out, rw } = run(input, size, { ownSettingsSent: true });
        expect(out.equals(Buffer.concat(input.filter((f, i) => f !== ackFrame || i !== input.indexOf(ackFrame))))).toBe(true);
        expect(rw.passing).toBe(true);
      }
    }
    // before its ACK the rewriter keeps reading, even past an acceptable block
    const { rw } = run([PREFACE, SETTINGS, headers, data], undefined, { ownSettingsSent: true });
    expect(rw.passing).toBe(false);
    // a rewritten connection drops it too, and forwards later ACKs
    const path = '/run/agent.sock';
    const enc2 = clientEncoder();
    const { out } = run([PREFACE, SETTINGS, frame(0x1, 0x4, 1, enc2(request(path))), ackFrame, ackFrame], undefined, { ownSettingsSent: true });
    expect(parse(out).frames.map((f) => [f.type, f.flags])).toEqual([[0x4, 0], [0x1, 0x4], [0x4, 0x1]]);
  });
});

describe('acceptConnection: the first header block read by the agent, then the connection to nghttp2', () => {
  /** an HTTP/2 server behind acceptConnection on a Unix socket; answers each stream with the class of its session socket's handle */
  async function serve() {
    const dir = mkdtempSync(`${tmpdir()}/wisp-authority-`);
    const h2 = http2.createServer();
    const keys: string[] = [];
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'x-handle': String((stream.session!.socket as unknown as { _handle?: object })._handle?.constructor.name), 'x-authority': String(headers[':authority']) });
      stream.end();
    });
    const path = `${dir}/h2.sock`;
    const server = createServer((socket) => {
      keys.push('k');
      acceptConnection(socket, `k${keys.length}`, (connection) => h2.emit('connection', connection));
    });
    await new Promise<void>((r) => server.listen(path, r));
    return { path, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  async function get(path: string, authority: string) {
    const session = http2.connect('http://localhost', { createConnection: () => connect(path) });
    session.on('error', () => undefined);
    try {
      return await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/x', ':authority': authority });
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      });
    } finally {
      session.close();
    }
  }

  it('an acceptable :authority gets the native socket (a Pipe handle), a path gets the rewriting shim (a JSStream handle) and localhost', async () => {
    const server = await serve();
    try {
      expect(await get(server.path, 'localhost')).toMatchObject({ ':status': 200, 'x-handle': 'Pipe', 'x-authority': 'localhost' });
      expect(await get(server.path, '/run/agent.sock')).toMatchObject({ ':status': 200, 'x-handle': 'JSStream', 'x-authority': REWRITTEN_AUTHORITY });
    } finally {
      await server.close();
    }
  });

  it('serves a client that sends HEADERS only after the server SETTINGS (as grpc-go and grpc-java do)', async () => {
    const server = await serve();
    try {
      const socket = connect(server.path);
      const got: Buffer[] = [];
      socket.on('data', (d: Buffer) => got.push(d));
      socket.write(Buffer.concat([PREFACE, SETTINGS]));
      const until = async (test: (all: Buffer) => boolean) => {
        for (let i = 0; i < 200 && !test(Buffer.concat(got)); i++) await new Promise((r) => setTimeout(r, 10));
        return Buffer.concat(got);
      };
      // nothing but the agent's own SETTINGS until the client speaks again
      expect((await until((all) => all.length >= 9)).subarray(0, 9).equals(EMPTY_SETTINGS)).toBe(true);
      const enc = clientEncoder();
      socket.write(Buffer.concat([frame(0x4, 0x1, 0, Buffer.alloc(0)), frame(0x1, 0x5, 1, enc(request('localhost')))]));
      // nghttp2's own SETTINGS (ACKed here), then a response HEADERS frame on stream 1 with :status 200
      const all = await until((b) => {
        for (let at = 0; at + 9 <= b.length; at += 9 + b.readUIntBE(at, 3)) if (b[at + 3] === 0x1 && b.readUInt32BE(at + 5) === 1) return true;
        return false;
      });
      const types: number[] = [];
      for (let at = 0; at + 9 <= all.length; at += 9 + all.readUIntBE(at, 3)) types.push(all[at + 3]!);
      expect(types[0]).toBe(0x4);
      expect(types.filter((t) => t === 0x4).length).toBeGreaterThanOrEqual(2); // ours, nghttp2's (and its ACK of the client's)
      expect(types).toContain(0x1);
      expect(types).not.toContain(0x7); // no GOAWAY: nghttp2 saw no unexpected ACK
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('closes a connection that sends more than 256 KiB before its first header block, or breaks the framing before it', async () => {
    const server = await serve();
    const closedAfter = async (bytes: Buffer) => {
      const socket = connect(server.path);
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      socket.write(bytes);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 3000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      }).finally(() => socket.destroy());
    };
    try {
      const ping = frame(0x6, 0, 0, Buffer.alloc(8));
      expect(await closedAfter(Buffer.concat([PREFACE, SETTINGS, ...Array.from({ length: 16_000 }, () => ping)]))).toBe(true);
      expect(await closedAfter(Buffer.concat([PREFACE, SETTINGS, frame(0x1, 0, 1, Buffer.from([0x82])), ping]))).toBe(true); // a PING inside a header block
      // a few frames before the first block are fine: the connection stays open
      expect(await closedAfter(Buffer.concat([PREFACE, SETTINGS, ping, ping]))).toBe(false);
    } finally {
      await server.close();
    }
  });
});
