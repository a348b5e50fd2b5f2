// A notifier a test plays (and an attacker's): answers WebSocket upgrades itself (RFC 6455 handshake), sends
// whatever frames the test says (unmasked, as a server), and reads the client's masked frames. Plugged into
// the in-process issuer's `onUpgrade`, or any node:http server's 'upgrade' event.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export interface FakeNotifier {
  sockets: Duplex[];
  upgrades: IncomingMessage[];
  /** the client's frames, unmasked: opcode and UTF-8 payload */
  clientFrames: { opcode: number; text: string }[];
  onUpgrade(req: IncomingMessage, socket: Duplex): void;
  /** a text (string) or binary (Buffer) frame on every socket */
  send(payload: string | Buffer): void;
  /** raw bytes on every socket (malformed frames) */
  sendRaw(bytes: Buffer): void;
  close(): void;
}

export interface FakeNotifierOptions {
  /** answer the client's text `ping` with `pong`, as the AgentNotifier's runtime does; default false */
  answerPings?: boolean;
  /** the Sec-WebSocket-Accept to answer with; default the right one */
  accept?: (key: string) => string;
}

export function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const length = payload.length < 126 ? Buffer.from([payload.length]) : Buffer.from([126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode]), length, payload]);
}

export function fakeNotifier(options: FakeNotifierOptions = {}): FakeNotifier {
  const f: FakeNotifier = {
    sockets: [],
    upgrades: [],
    clientFrames: [],
    onUpgrade(req, socket) {
      f.upgrades.push(req);
      const key = String(req.headers['sec-websocket-key']);
      const accept = options.accept?.(key) ?? createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.on('error', () => undefined);
      // node:http's server sockets allow half-open connections: end ours when the client ends its side
      socket.on('end', () => socket.end());
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        // client frames: masked, short (the agent sends only pings, pongs and a close)
        while (buf.length >= 6 && buf.length >= 6 + (buf[1]! & 0x7f)) {
          const len = buf[1]! & 0x7f;
          const mask = buf.subarray(2, 6);
          const text = Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]!)).toString('utf8');
          const opcode = buf[0]! & 0x0f;
          buf = buf.subarray(6 + len);
          f.clientFrames.push({ opcode, text });
          if (options.answerPings && opcode === 0x1 && text === 'ping') socket.write(frame(0x1, Buffer.from('pong')));
        }
      });
      f.sockets.push(socket);
    },
    send(payload) {
      f.sendRaw(frame(typeof payload === 'string' ? 0x1 : 0x2, Buffer.from(payload)));
    },
    sendRaw(bytes) {
      for (const s of f.sockets) s.write(bytes);
    },
    close() {
      for (const s of f.sockets) s.destroy();
    },
  };
  return f;
}
