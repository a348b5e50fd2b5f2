/**
 * The agent's end of the issuer's notification channel (docs/agent-api.md "Notifications"): a WebSocket
 * (notification-socket.ts) to `GET /agent/v1/notifications`, its upgrade signed with an agent proof like every agent call, held open
 * (reconnected with backoff and jitter, a keepalive ping so a dead connection is noticed) while the agent
 * runs. Any message but the keepalive's answer means "sync now" and nothing else: its content is never
 * read, so a forged, replayed or crafted message can at most cause a sync, which goes through the signed
 * agent API as always. The poll at `syncIntervalSeconds` stays; a lost notice is caught by it.
 *
 * `createSyncTrigger` joins the two: the rotator sleeps through `trigger.sleep`, which a notice cuts short;
 * notices during a sync make one more sync, not one each, and their rate is bounded (NOTICE_SYNC_LIMIT).
 * @module
 */
import { KEEPALIVE_PING, KEEPALIVE_PONG, NOTIFICATIONS_ROUTE } from '../shared/agent-notifications.js';
import { AGENT_API_PREFIX } from '../shared/agent-api.js';
import type { Clock } from '../shared/clock.js';
import { takeTokens, type BucketState, type RateLimit } from '../shared/rate-limit/token-bucket.js';
import type { IssuerClient } from './issuer-client.js';
import { LOG_FIELDS, type Logger } from './log.js';
import { backoffDelayMs } from './rotation-policy.js';
import { openNotificationSocket } from './notification-socket.js';

/** Syncs that notices may start: a burst of 10, then 5 a second (the poll is not counted). */
export const NOTICE_SYNC_LIMIT: RateLimit = { ratePerSecond: 5, burst: 10 };
/** How often the agent pings; no answer by the next ping ends the connection. */
export const KEEPALIVE_INTERVAL_MS = 30_000;
/** A channel open this long resets the reconnect backoff. */
const STABLE_AFTER_MS = 10_000;
/** Reconnect (with a fresh proof) after about this long, ±25%, so a channel never outlives its credentials by much. */
const MAX_CHANNEL_MS = 60 * 60_000;

export interface SyncTrigger {
  /** asks for a sync as soon as possible (coalesced; deferred when over NOTICE_SYNC_LIMIT) */
  fire(): void;
  /** the rotator's sleep: `ms`, or until a sync is asked for, or until `signal` aborts */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export function createSyncTrigger(clock: Clock): SyncTrigger {
  let pending = false;
  let wake: (() => void) | undefined;
  let bucket: BucketState | undefined;
  let deferred: ReturnType<typeof setTimeout> | undefined;
  const trigger: SyncTrigger = {
    fire() {
      if (pending || deferred) return;
      const taken = takeTokens(NOTICE_SYNC_LIMIT, bucket, clock());
      bucket = taken.state;
      if (!taken.ok) {
        deferred = setTimeout(() => {
          deferred = undefined;
          trigger.fire();
        }, taken.retryAfterMs);
        deferred.unref?.();
        return;
      }
      pending = true;
      wake?.();
    },
    sleep(ms, signal) {
      if (pending || signal.aborted) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          wake = undefined;
          pending = false;
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
        wake = done;
      });
    },
  };
  return trigger;
}

export interface NotificationChannelDeps {
  /** AgentConfig.serverUrl (https, or http on loopback): the channel is wss:// or ws:// to the same host */
  serverUrl: string;
  client: Pick<IssuerClient, 'proofFor'>;
  /** called on every notice, and on every (re)connection (notices may have been missed meanwhile) */
  onNotice: () => void;
  log: Logger;
  random: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  keepaliveMs?: number;
}

/** Runs until `signal` aborts; never rejects (a channel that cannot be held leaves the poll alone). */
export async function runNotificationChannel(deps: NotificationChannelDeps, signal: AbortSignal): Promise<void> {
  const url = new URL(`${deps.serverUrl}${AGENT_API_PREFIX}${NOTIFICATIONS_ROUTE}`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  let failures = 0;
  while (!signal.aborted) {
    let held = 0;
    try {
      const authorization = await deps.client.proofFor('GET', NOTIFICATIONS_ROUTE);
      held = await holdChannel(url, authorization, deps, signal);
    } catch (e) {
      deps.log.debug({ err: e }, 'notification channel: no proof to connect with yet');
    }
    if (signal.aborted) return;
    failures = held >= STABLE_AFTER_MS ? 1 : failures + 1;
    const delay = backoffDelayMs(failures, deps.random());
    deps.log[failures > 1 ? 'warn' : 'info']({ [LOG_FIELDS.RETRY_IN_MS]: delay, attempts: failures }, 'notification channel closed; syncing by poll until it is back');
    await deps.sleep(delay, signal);
  }
}

/** One connection: resolves with how long it was open (0: it never opened) once it is closed. */
async function holdChannel(url: URL, authorization: string, deps: NotificationChannelDeps, signal: AbortSignal): Promise<number> {
  const keepaliveMs = deps.keepaliveMs ?? KEEPALIVE_INTERVAL_MS;
  let closed!: () => void;
  const ended = new Promise<void>((resolve) => (closed = resolve));
  let awaitingPong = false;
  const socket = await openNotificationSocket(url, { authorization }, keepaliveMs, {
    message(text) {
      if (text === KEEPALIVE_PONG) {
        awaitingPong = false;
        return;
      }
      // "sync now", whatever the message says: nothing in it is read
      deps.onNotice();
    },
    closed: () => closed(),
  });
  const openedAt = Date.now();
  deps.log.info('notification channel open');
  deps.onNotice();
  const keepalive = setInterval(() => {
    // no answer to the last ping: the connection is gone without a close (a half-open TCP connection)
    if (awaitingPong) return socket.close();
    awaitingPong = true;
    socket.sendText(KEEPALIVE_PING);
  }, keepaliveMs);
  const renew = setTimeout(() => socket.close(), MAX_CHANNEL_MS * (0.75 + deps.random() / 2));
  const stop = () => socket.close();
  signal.addEventListener('abort', stop, { once: true });
  if (signal.aborted) socket.close();
  await ended;
  clearInterval(keepalive);
  clearTimeout(renew);
  signal.removeEventListener('abort', stop);
  return Date.now() - openedAt;
}
