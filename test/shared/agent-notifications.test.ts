// The notification channel's pure rules (src/shared/agent-notifications.ts), on both runtimes: which agents
// an entry write concerns, how notices merge, what the notifier accepts as a target, and the socket tag.
import { describe, expect, it } from 'vitest';
import { MAX_NOTICE_AGENTS, mergeNotices, noticeForParents, notificationTag, parseNoticeTarget } from '../../src/shared/agent-notifications.js';
import type { SpiffeId } from '../../src/shared/spiffe/id.js';

const agent = (n: number | string) => `spiffe://example.org/spire/agent/join_token/${n}` as SpiffeId;

describe('noticeForParents', () => {
  it('names the parent agents once each; nothing for no parents', () => {
    expect(noticeForParents([agent(1), agent(2), agent(1)])).toEqual({ agents: [agent(1), agent(2)] });
    expect(noticeForParents([])).toBeUndefined();
  });

  it('tells every agent when a parent is not an agent ID (node alias, workload) or too many are named', () => {
    expect(noticeForParents([agent(1), 'spiffe://example.org/node-alias/web' as SpiffeId])).toEqual({ all: true });
    expect(noticeForParents(['spiffe://example.org/spire/server' as SpiffeId])).toEqual({ all: true });
    expect(noticeForParents(Array.from({ length: MAX_NOTICE_AGENTS + 1 }, (_, i) => agent(i)))).toEqual({ all: true });
  });
});

describe('mergeNotices', () => {
  it('unites agents, lets all win, and closes only when both close', () => {
    expect(mergeNotices({ agents: [agent(1)] }, { agents: [agent(2), agent(1)] })).toEqual({ agents: [agent(1), agent(2)] });
    expect(mergeNotices({ agents: [agent(1)] }, { all: true })).toEqual({ all: true });
    expect(mergeNotices({ agents: [agent(1)], close: true }, { agents: [agent(2)] })).toEqual({ agents: [agent(1), agent(2)] });
    expect(mergeNotices({ agents: [agent(1)], close: true }, { agents: [agent(1)], close: true })).toEqual({ agents: [agent(1)], close: true });
    expect(mergeNotices(undefined, { all: true })).toEqual({ all: true });
  });
});

describe('parseNoticeTarget', () => {
  it('takes all or a bounded list of agent ID strings, nothing else', () => {
    expect(parseNoticeTarget({ all: true })).toEqual({ all: true });
    expect(parseNoticeTarget({ agents: [agent(1)], close: true })).toEqual({ agents: [agent(1)], close: true });
    for (const bad of [null, 'all', { all: 'yes' }, { agents: [] }, { agents: [1] }, { agents: [''] }, { agents: ['x'.repeat(2049)] }, { agents: Array.from({ length: MAX_NOTICE_AGENTS + 1 }, (_, i) => agent(i)) }]) {
      expect(parseNoticeTarget(bad)).toBeUndefined();
    }
  });
});

describe('notificationTag', () => {
  it('is a 43-character base64url SHA-256, the same for one agent and different for two', async () => {
    const long = agent('x'.repeat(2000));
    expect(await notificationTag(long)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await notificationTag(agent(1))).toBe(await notificationTag(agent(1)));
    expect(await notificationTag(agent(1))).not.toBe(await notificationTag(agent(2)));
  });
});
