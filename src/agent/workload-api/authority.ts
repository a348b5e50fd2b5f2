/**
 * Lets a client through whose HTTP/2 `:authority` is not an RFC 3986 authority, such as grpc-java (java-spiffe),
 * which sends the Unix socket's path (`:authority: /run/wisp/agent.sock`, grpc/grpc-java#12664). Node's HTTP/2
 * (nghttp2) answers such a stream with RST_STREAM PROTOCOL_ERROR before grpc-js sees it, and Node exposes no
 * option to turn that check off (its session options map to a few nghttp2 options; `no_http_messaging` is not
 * one). SPIRE's agent accepts the value, so the agent must too, without asking clients to change.
 *
 * So the agent reads each new connection itself until the client's first header block (`acceptConnection`).
 * grpc-go and grpc-java send their first HEADERS only after the server's SETTINGS, which nghttp2 would write only
 * once it owns the connection, so the agent first writes an empty SETTINGS frame of its own (RFC 9113 §3.4: the
 * server preface; a later SETTINGS from nghttp2 is legal, §6.5) and drops the client's ACK of it, which nghttp2
 * would refuse as unexpected. If the first block's `:authority` is acceptable (grpc-go, grpc-js, Envoy send
 * `localhost`), the native socket and the bytes read so far go to nghttp2 (Node replays a socket's buffered
 * bytes into a new session), and from then on Node's HTTP/2 reads the socket natively: no JavaScript between.
 * Otherwise the connection is rewritten for its whole life through a stream shim below nghttp2: every header
 * block is decoded (HPACK, with hpack.js, against the client's dynamic table), `:authority` becomes `localhost`
 * (what the other gRPC stacks send for a Unix socket; nothing in the agent reads it), and the block is encoded
 * again for nghttp2. Bytes from the agent to the client are never touched. Frame layout: RFC 9113 §4.1, §6.2,
 * §6.5, §6.10.
 * @module
 */
import hpack, { type HpackHeader, type HpackStream } from 'hpack.js';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { LOCALHOST } from '../../shared/net/loopback.js';

/** RFC 9113 §3.4 */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const SETTINGS = 0x4;
const CONTINUATION = 0x9;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** what Node's HTTP/2 advertises (SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_FRAME_SIZE): the agent sets neither */
const TABLE_SIZE = 4096;
const MAX_FRAME = 16_384;
/** bound on a header block the shim buffers (grpc-js' server refuses far smaller ones anyway) */
const MAX_BLOCK = 64 * 1024;
/** bound on what a connection may send before its first header block is read (preface, SETTINGS, WINDOW_UPDATE...) */
const MAX_BEFORE_HANDOVER = 256 * 1024;
/** the agent's own server preface: a SETTINGS frame with no parameters (RFC 9113 §3.4, §6.5) */
export const EMPTY_SETTINGS = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
/** what grpc-go and grpc-js send as `:authority` on a Unix socket */
export const REWRITTEN_AUTHORITY = LOCALHOST;

/** RFC 3986 §3.2 authority characters: the set nghttp2 accepts in `:authority` (nghttp2_check_authority) */
const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

/** Whether nghttp2 lets this `:authority` value through. */
export function isAcceptedAuthority(value: string): boolean {
  return AUTHORITY.test(value);
}

/** One frame header, RFC 9113 §4.1. */
function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return h;
}

/** A header block as HEADERS + CONTINUATION frames no larger than the peer's frame size. */
function headerFrames(streamId: number, flags: number, priority: Buffer | undefined, block: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const firstRoom = MAX_FRAME - (priority?.length ?? 0);
  const first = block.subarray(0, firstRoom);
  const last = first.length === block.length;
  const headersFlags = (flags & ~(PADDED | END_HEADERS | PRIORITY)) | (priority ? PRIORITY : 0) | (last ? END_HEADERS : 0);
  out.push(frameHeader(first.length + (priority?.length ?? 0), HEADERS, headersFlags, streamId));
  if (priority) out.push(priority);
  out.push(first);
  for (let at = first.length; at < block.length; at += MAX_FRAME) {
    const part = block.subarray(at, at + MAX_FRAME);
    out.push(frameHeader(part.length, CONTINUATION, at + MAX_FRAME >= block.length ? END_HEADERS : 0, streamId), part);
  }
  return out;
}

/**
 * sniff: before the first header block; awaitAck: the block was acceptable, waiting for the client's ACK of the
 * agent's own SETTINGS; pass: nothing more to look at; rewrite: every header block rewritten.
 */
type Mode = 'sniff' | 'awaitAck' | 'rewrite' | 'pass';

/**
 * The client → agent byte stream as a state machine: `push` gets what nghttp2 should read. Exported for tests;
 * `acceptConnection` wires it to a socket.
 */
export class AuthorityRewriter {
  private mode = 'sniff' as Mode;
  private buffered: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private readonly decoder = hpack.decompressor.create({ table: { maxSize: TABLE_SIZE } });
  private encoder: HpackStream | undefined;
  /** the HEADERS frame being continued: its stream, flags, priority fields and fragments so far */
  private block: { streamId: number; flags: number; priority?: Buffer; raw: Buffer[]; fragments: Buffer[]; size: number } | undefined;

  /** whether the client's ACK of the agent's own SETTINGS is still to be dropped */
  private ackPending: boolean;

  /**
   * `push` gets what nghttp2 should read. With `ownSettingsSent`, the agent wrote EMPTY_SETTINGS before nghttp2
   * owned the connection: the client's first SETTINGS ACK is for it, and is dropped.
   */
  constructor(
    private push: (chunk: Buffer) => void,
    options: { ownSettingsSent?: boolean } = {},
  ) {
    this.ackPending = options.ownSettingsSent ?? false;
  }

  /** whether this connection's header blocks are being rewritten */
  get rewriting(): boolean {
    return this.mode === 'rewrite';
  }

  /** whether nothing more needs reading: the rest of the connection can go to nghttp2 untouched */
  get passing(): boolean {
    return this.mode === 'pass';
  }

  /** where what nghttp2 should read goes from now on */
  redirect(push: (chunk: Buffer) => void): void {
    this.push = push;
  }

  /** Feeds bytes from the client; throws on a malformed stream (the caller closes the connection). */
  write(chunk: Buffer): void {
    if (this.mode === 'pass') return this.push(chunk);
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    if (!this.prefaceSeen) {
      if (this.buffered.length < PREFACE.length) return;
      // not HTTP/2 with prior knowledge: nghttp2 refuses it on its own
      if (!this.buffered.subarray(0, PREFACE.length).equals(PREFACE)) return this.passRest();
      this.prefaceSeen = true;
      this.push(this.buffered.subarray(0, PREFACE.length));
      this.buffered = this.buffered.subarray(PREFACE.length);
    }
    while (!this.isPassing() && this.buffered.length >= FRAME_HEADER) {
      const length = this.buffered.readUIntBE(0, 3);
      if (length > MAX_FRAME) return this.passRest(); // FRAME_SIZE_ERROR: nghttp2 answers it
      if (this.buffered.length < FRAME_HEADER + length) return;
      const frame = this.buffered.subarray(0, FRAME_HEADER + length);
      this.buffered = this.buffered.subarray(FRAME_HEADER + length);
      this.frame(frame);
    }
    if (this.isPassing()) this.passRest();
  }

  /** a method, so TypeScript does not keep `mode` narrowed across the calls that change it */
  private isPassing(): boolean {
    return this.mode === 'pass';
  }

  private passRest(): void {
    this.mode = 'pass';
    if (this.buffered.length) this.push(this.buffered);
    this.buffered = Buffer.alloc(0);
  }

  private frame(frame: Buffer): void {
    const type = frame[3]!;
    const flags = frame[4]!;
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    if (type === SETTINGS && flags & ACK && this.ackPending && !this.block) {
      // the ACK of the agent's own SETTINGS (ACKs come in order, and it was the first SETTINGS sent)
      this.ackPending = false;
      if (this.mode === 'awaitAck') this.mode = 'pass';
      return;
    }
    if (this.mode === 'awaitAck') return this.push(frame); // the first block was acceptable: nothing to read but the ACK
    if (type === HEADERS) {
      if (this.block) throw new Error('HEADERS inside a header block');
      let payload = frame.subarray(FRAME_HEADER);
      if (flags & PADDED) {
        const pad = payload[0] ?? 0;
        if (pad >= payload.length) throw new Error('HEADERS padding exceeds the frame');
        payload = payload.subarray(1, payload.length - pad);
      }
      let priority: Buffer | undefined;
      if (flags & PRIORITY) {
        if (payload.length < 5) throw new Error('HEADERS too short for its priority fields');
        priority = payload.subarray(0, 5);
        payload = payload.subarray(5);
      }
      this.block = { streamId, flags, priority, raw: [frame], fragments: [payload], size: payload.length };
    } else if (type === CONTINUATION) {
      if (!this.block || this.block.streamId !== streamId) throw new Error('CONTINUATION outside a header block');
      this.block.raw.push(frame);
      this.block.fragments.push(frame.subarray(FRAME_HEADER));
      this.block.size += frame.length - FRAME_HEADER;
    } else {
      if (this.block) throw new Error('a frame inside a header block');
      return this.push(frame);
    }
    if (this.block.size > MAX_BLOCK) throw new Error('header block too large');
    if (flags & END_HEADERS) {
      const block = this.block;
      this.block = undefined;
      this.headerBlock(block);
    }
  }

  private headerBlock(block: NonNullable<AuthorityRewriter['block']>): void {
    const headers = this.decode(Buffer.concat(block.fragments));
    if (this.mode === 'sniff') {
      const authority = headers.find((h) => h.name === ':authority');
      if (!authority || isAcceptedAuthority(authority.value)) {
        // the usual client: forward as it came and stop looking (once the ACK of the agent's SETTINGS is dropped)
        for (const raw of block.raw) this.push(raw);
        this.mode = this.ackPending ? 'awaitAck' : 'pass';
        return;
      }
      this.mode = 'rewrite';
      // nghttp2 has seen no header block yet, so its dynamic table is empty, as this encoder's
      this.encoder = hpack.compressor.create({ table: { maxSize: TABLE_SIZE } });
    }
    const rewritten = headers.map((h) => (h.name === ':authority' ? { name: h.name, value: REWRITTEN_AUTHORITY } : { name: h.name, value: h.value, neverIndex: h.neverIndex }));
    this.encoder!.write(rewritten);
    const encoded = (this.encoder!.read() as Buffer | null) ?? Buffer.alloc(0);
    for (const part of headerFrames(block.streamId, block.flags, block.priority, encoded)) this.push(part);
  }

  private decode(block: Buffer): HpackHeader[] {
    this.decoder.write(block);
    let error: Error | null = null;
    // execute() runs synchronously; its callback (deferred) is not used, errors are caught here
    try {
      this.decoder.execute();
    } catch (err) {
      error = err as Error;
    }
    const headers: HpackHeader[] = [];
    for (let h = this.decoder.read() as HpackHeader | null; h; h = this.decoder.read() as HpackHeader | null) headers.push(h);
    if (error) throw new Error(`HPACK: ${error.message}`);
    return headers;
  }
}

/**
 * A stream below nghttp2 that reads the client through `rewriter` (whose output it pushes) and writes what
 * nghttp2 writes straight to the socket. `first` is what the rewriter produced before the shim existed.
 */
function rewritingShim(socket: Socket, rewriter: AuthorityRewriter, first: Buffer[]): Duplex {
  const shim = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (socket.write(chunk)) callback();
      else socket.once('drain', () => callback());
    },
    writev(chunks, callback) {
      socket.cork();
      let flushed = true;
      for (const { chunk } of chunks) flushed = socket.write(chunk as Buffer);
      socket.uncork();
      if (flushed) callback();
      else socket.once('drain', () => callback());
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  for (const chunk of first) shim.push(chunk);
  rewriter.redirect((chunk) => {
    if (!shim.push(chunk)) socket.pause();
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      rewriter.write(chunk);
    } catch (err) {
      shim.destroy(err as Error);
    }
  });
  socket.on('end', () => shim.push(null));
  socket.on('error', (err) => shim.destroy(err));
  socket.on('close', () => shim.destroy());
  return shim;
}

const CONNECTION_KEY = Symbol('wisp.connectionKey');

/**
 * Takes an accepted Unix connection, named `key`, and hands it to `inject` (grpc-js' `injectConnection`) once
 * its first header block is read: the native socket itself, with the bytes read so far put back, when the
 * block's `:authority` is acceptable; a rewriting shim otherwise. A connection that breaks the framing before
 * that, or sends more than MAX_BEFORE_HANDOVER bytes first, is closed.
 */
export function acceptConnection(socket: Socket, key: string, inject: (connection: Duplex) => void): void {
  const read: Buffer[] = [];
  let readBytes = 0;
  const rewriter = new AuthorityRewriter((chunk) => {
    read.push(chunk);
    readBytes += chunk.length;
  }, { ownSettingsSent: true });
  const onData = (chunk: Buffer) => {
    try {
      rewriter.write(chunk);
      if (readBytes > MAX_BEFORE_HANDOVER) throw new Error('too much before the first header block');
    } catch {
      socket.destroy();
      return;
    }
    if (rewriter.passing) {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      // Node's HTTP/2 replays a socket's buffered bytes into the new session (lib/internal/http2/core.js, setupHandle)
      if (read.length) socket.unshift(Buffer.concat(read));
      (socket as unknown as Record<symbol, string>)[CONNECTION_KEY] = key;
      inject(socket);
    } else if (rewriter.rewriting) {
      socket.off('data', onData);
      socket.off('end', onEnd);
      const shim = rewritingShim(socket, rewriter, read);
      (shim as unknown as Record<symbol, string>)[CONNECTION_KEY] = key;
      inject(shim);
    }
  };
  const onEnd = () => socket.destroy();
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', () => socket.destroy());
  socket.write(EMPTY_SETTINGS);
}

interface CallInternals {
  call?: CallInternals;
  nextCall?: CallInternals;
  stream?: { session?: { socket?: Record<symbol, unknown> & { stream?: Record<symbol, unknown> } } };
}

/**
 * The key of the connection a grpc-js server call came on. `call.getPeer()` cannot tell: grpc-js reads the
 * address of the HTTP/2 session's socket, which a Unix socket's peer does not have, and for the rewriting shim
 * Node makes that a wrapper of its own (JSStreamSocket, whose `stream` is the shim). So this follows grpc-js' call
 * to its HTTP/2 stream (ServerUnaryCallImpl.call → BaseServerInterceptingCall.stream, @grpc/grpc-js 1.14) and on to
 * the session's socket (Node's proxy of the native socket) or the shim under it. undefined if either library no
 * longer works so: the call then finds no caller and fails closed.
 */
export function connectionKeyOf(call: object): string | undefined {
  let c = (call as CallInternals).call;
  for (let depth = 0; c && !c.stream && depth < 8; depth++) c = c.nextCall;
  try {
    const socket = c?.stream?.session?.socket;
    const key = socket?.[CONNECTION_KEY] ?? socket?.stream?.[CONNECTION_KEY];
    return typeof key === 'string' ? key : undefined;
  } catch {
    return undefined; // the session lost its socket (Node's proxy throws): no caller
  }
}
