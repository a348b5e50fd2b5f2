/**
 * The notification channel's WebSocket client (RFC 6455), over node:http's upgrade: the handshake (with the
 * agent proof header), and just enough framing for a channel whose messages are never read. Node's global
 * WebSocket (undici's) would do, but loading undici costs the agent ~16 MB of RSS measured here for one
 * socket (the same reason src/node/http-request.ts avoids fetch). The frame reader accepts only small
 * unmasked server frames (MAX_FRAME_BYTES: a notice is 15 bytes) and tells the caller "a message came" or
 * "the keepalive was answered"; anything malformed or oversized ends the connection.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { toBase64 } from '../shared/encoding/base64.js';

/** Largest frame (and message) the agent takes; a notifier has no reason to send more. */
export const MAX_FRAME_BYTES = 4096;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface SocketEvents {
  /** a complete message (text or binary); `text` is its UTF-8 decoding, for the keepalive answer only */
  message(text: string): void;
  /** the connection ended (closed, reset, or refused a frame) */
  closed(): void;
}

export interface NotificationSocket {
  sendText(text: string): void;
  close(): void;
}

/** Opens `url` (ws: or wss:) with `headers`; rejects on a refused upgrade (its HTTP status in the message). */
export function openNotificationSocket(url: URL, headers: Record<string, string>, timeoutMs: number, events: SocketEvents): Promise<NotificationSocket> {
  const key = toBase64(randomBytes(16));
  const secure = url.protocol === 'wss:';
  const send = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (secure ? 443 : 80),
      path: url.pathname + url.search,
      headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': key },
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      res.resume();
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
    });
    req.on('upgrade', (res: IncomingMessage, socket: Duplex & { setTimeout?(ms: number): void }, head: Buffer) => {
      socket.setTimeout?.(0); // the handshake's timeout; the keepalive watches the open channel
      const expected = toBase64(createHash('sha1').update(key + GUID).digest());
      if (res.headers['sec-websocket-accept'] !== expected) {
        socket.destroy();
        return reject(new Error('upgrade answer without the right Sec-WebSocket-Accept'));
      }
      resolve(attach(socket, head, events));
    });
    req.end();
  });
}

function attach(socket: Duplex, head: Buffer, events: SocketEvents): NotificationSocket {
  let buffered: Buffer = Buffer.alloc(0);
  let message: Buffer[] = [];
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    socket.destroy();
    events.closed();
  };
  const write = (opcode: number, payload: Buffer) => {
    if (ended) return;
    if (payload.length > 125) throw new RangeError('control-sized frames only');
    // client frames are masked (RFC 6455 §5.3); payloads here are a few bytes
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]));
  };
  socket.on('error', end);
  socket.on('close', end);
  socket.on('end', end);
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (!ended && buffered.length >= 2) {
      const fin = (buffered[0]! & 0x80) !== 0;
      const opcode = buffered[0]! & 0x0f;
      if ((buffered[1]! & 0x80) !== 0) return end(); // a server never masks
      let length = buffered[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffered.length < 4) return;
        length = buffered.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        return end(); // 64-bit lengths are far past MAX_FRAME_BYTES
      }
      if (length > MAX_FRAME_BYTES) return end();
      if (buffered.length < offset + length) return;
      const payload = buffered.subarray(offset, offset + length);
      buffered = buffered.subarray(offset + length);
      if (opcode === 0x8) return end(); // close
      if (opcode === 0x9) {
        write(0xa, Buffer.from(payload)); // ping → pong
        continue;
      }
      if (opcode === 0xa) continue; // an unasked pong
      if (opcode !== 0x0 && opcode !== 0x1 && opcode !== 0x2) return end();
      message.push(Buffer.from(payload));
      if (message.reduce((n, p) => n + p.length, 0) > MAX_FRAME_BYTES) return end();
      if (fin) {
        const text = Buffer.concat(message).toString('utf8');
        message = [];
        events.message(text);
      }
    }
  };
  socket.on('data', onData);
  if (head.length > 0) onData(head);
  return {
    sendText: (text) => write(0x1, Buffer.from(text)),
    close() {
      if (ended) return;
      write(0x8, Buffer.from([0x03, 0xe8])); // 1000, normal closure
      socket.end();
      end();
    },
  };
}
