/**
 * The notification channel's WebSocket client: `ws` (RFC 6455 handshake with the agent proof header, framing,
 * ping/pong, close), not Node's global WebSocket, because loading undici costs the agent ~16 MB of RSS measured
 * here for one socket (the same reason src/node/http-request.ts avoids fetch). Messages larger than
 * MAX_FRAME_BYTES end the connection (a notice is 15 bytes); compression is off. The caller learns only "a
 * message came" (its text, for the keepalive answer) and "the connection ended".
 * @module
 */
import type WebSocket from 'ws';

/** Largest message the agent takes; a notifier has no reason to send more. */
export const MAX_FRAME_BYTES = 4096;

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
export async function openNotificationSocket(url: URL, headers: Record<string, string>, timeoutMs: number, events: SocketEvents): Promise<NotificationSocket> {
  // loaded with the first connection, which comes after the agent serves (ws and node:http cost ~13 ms of its start)
  const { default: WebSocket } = await import('ws');
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, followRedirects: false });
    let opened = false;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      ws.terminate();
      if (opened) events.closed();
    };
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ended = true;
      ws.terminate();
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
    });
    ws.on('error', (e) => {
      if (!opened) {
        ended = true;
        return reject(e);
      }
      end();
    });
    ws.on('close', end);
    ws.on('message', (data: WebSocket.RawData) => {
      if (ended) return;
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      events.message(bytes.toString('utf8'));
    });
    ws.on('open', () => {
      opened = true;
      resolve({
        sendText: (text) => {
          if (!ended) ws.send(text);
        },
        close() {
          if (ended) return;
          ws.close(1000);
          end();
        },
      });
    });
  });
}
