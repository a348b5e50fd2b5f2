// The notification channel's WebSocket client (src/agent/notification-socket.ts) and its keepalive and
// reconnection (runNotificationChannel, src/agent/notifications.ts) against a server the test
// plays (test/helpers/node/fake-notifier.ts): the handshake and its refusals, messages whole and fragmented,
// the keepalive, the server's ping and close, and frames it refuses (masked, oversized) by ending the channel.
// The real AgentNotifier in workerd is its peer in test/e2e/push-notifications.test.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES, openNotificationSocket } from '../../src/agent/notification-socket.js';
import { runNotificationChannel } from '../../src/agent/notifications.js';
import { silentLogger } from '../../src/agent/log.js';
import { abortableSleep } from '../../src/agent/run-tasks.js';
import { fakeNotifier, frame, type FakeNotifier, type FakeNotifierOptions } from '../helpers/node/fake-notifier.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function serve(options: FakeNotifierOptions = {}, status?: number): Promise<{ url: URL; notifier: FakeNotifier; server: Server }> {
  const notifier = fakeNotifier(options);
  const server = createServer((_req, res) => {
    res.statusCode = status ?? 404;
    res.end('{"error":{"code":"ERR_AGENT_AUTH_FAILED","message":"agent authentication failed"}}');
  });
  if (status === undefined) server.on('upgrade', (req, socket) => notifier.onUpgrade(req, socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    notifier.close();
    server.close();
  });
  return { url: new URL(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/agent/v1/notifications`), notifier, server };
}

function recorder() {
  const messages: string[] = [];
  let closed = false;
  return { messages, get closed() { return closed; }, events: { message: (t: string) => void messages.push(t), closed: () => void (closed = true) } };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('openNotificationSocket', () => {
  it('sends the given headers on the upgrade and hands over whole messages, fragmented or not', async () => {
    const { url, notifier } = await serve();
    const r = recorder();
    await openNotificationSocket(url, { authorization: 'WispAgentProof x' }, 5_000, r.events);
    expect(notifier.upgrades[0]!.headers.authorization).toBe('WispAgentProof x');
    notifier.send('{"type":"sync"}');
    notifier.send(Buffer.from([1, 2, 3]));
    notifier.sendRaw(Buffer.concat([frame(0x1, Buffer.from('frag'), false), frame(0x0, Buffer.from('mented'))]));
    await until(() => r.messages.length === 3);
    expect(r.messages[0]).toBe('{"type":"sync"}');
    expect(r.messages[2]).toBe('fragmented');
    expect(r.closed).toBe(false);
  });

  it('sends masked text frames, answers a ping with a pong, and ends on a close frame', async () => {
    const { url, notifier } = await serve();
    const r = recorder();
    const s = await openNotificationSocket(url, {}, 5_000, r.events);
    s.sendText('ping');
    notifier.sendRaw(frame(0x9, Buffer.from('hb')));
    await until(() => notifier.clientFrames.length === 2);
    expect(notifier.clientFrames).toEqual([{ opcode: 0x1, text: 'ping' }, { opcode: 0xa, text: 'hb' }]);
    notifier.sendRaw(frame(0x8, Buffer.from([0x03, 0xe8])));
    await until(() => r.closed);
    expect(r.messages).toEqual([]);
  });

  it('ends the channel on a masked server frame, an oversized one, or one announcing 4 GiB', async () => {
    for (const bad of [
      Buffer.from([0x81, 0x84, 1, 2, 3, 4, 5, 6, 7, 8]),
      frame(0x1, Buffer.alloc(MAX_FRAME_BYTES + 1, 0x61)),
      Buffer.from([0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0, 0x61]),
    ]) {
      const { url, notifier } = await serve();
      const r = recorder();
      await openNotificationSocket(url, {}, 5_000, r.events);
      notifier.sendRaw(bad);
      await until(() => r.closed);
      expect(r.messages).toEqual([]);
    }
  });

  it('rejects a refused upgrade with its status, and an answer with the wrong Sec-WebSocket-Accept', async () => {
    const refused = await serve({}, 401);
    await expect(openNotificationSocket(refused.url, {}, 5_000, recorder().events)).rejects.toThrow(/HTTP 401/);
    const wrong = await serve({ accept: () => 'bm90IHRoZSByaWdodCBvbmU=' });
    await expect(openNotificationSocket(wrong.url, {}, 5_000, recorder().events)).rejects.toThrow(/Sec-WebSocket-Accept/);
  });
});

describe('runNotificationChannel', () => {
  async function channel(options: FakeNotifierOptions) {
    const { url, notifier } = await serve(options);
    const controller = new AbortController();
    let notices = 0;
    const done = runNotificationChannel(
      { serverUrl: `http://${url.host}`, client: { proofFor: async () => 'WispAgentProof test' }, onNotice: () => void notices++, log: silentLogger(), random: () => 0, sleep: abortableSleep, keepaliveMs: 50 },
      controller.signal,
    );
    cleanups.push(() => controller.abort());
    return { notifier, notices: () => notices, stop: async () => (controller.abort(), await done) };
  }

  it('keeps a channel whose pings are answered, asking for a sync on opening and on each notice', async () => {
    const c = await channel({ answerPings: true });
    await until(() => c.notifier.clientFrames.filter((f) => f.text === 'ping').length >= 3);
    expect(c.notifier.upgrades).toHaveLength(1);
    expect(c.notifier.upgrades[0]!.url).toBe('/agent/v1/notifications');
    expect(c.notices()).toBe(1);
    c.notifier.send('{"type":"sync"}');
    await until(() => c.notices() === 2);
    await c.stop();
  });

  it('drops a channel whose ping goes unanswered (a half-open connection) and connects again', async () => {
    const c = await channel({ answerPings: false });
    await until(() => c.notifier.upgrades.length >= 2);
    // the second opening asks for a sync again: notices may have been missed in between
    await until(() => c.notices() >= 2);
    await c.stop();
  });
});
