/**
 * `wisp agent list|show|count|ban|evict`: attested agents (SPIRE's `spire-server agent`). Evicting removes
 * the agent so it must attest again; banning keeps it out until it is evicted.
 * @module
 */
import type { Command } from 'commander';
import { addGroup, type LeafBuilder } from './command.js';
import { parseSpiffeIdFlag, requireFlag } from './flags.js';

/** An agent as the admin API returns it; printed field by field, so new fields show up without a change. */
export type AgentInfo = Record<string, unknown> & { spiffeId?: string };

const AGENTS = '/admin/v1/agents';

function valueText(key: string, value: unknown): string {
  if (typeof value === 'number' && /At$|Expires|expires/.test(key) && value > 1e9) return new Date(value * 1000).toISOString();
  if (Array.isArray(value)) {
    return value.map((v) => (typeof v === 'object' && v !== null && 'type' in v && 'value' in v ? `${v.type}:${v.value}` : JSON.stringify(v))).join(', ');
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `Key name : value` lines, SPIRE style, SPIFFE ID first. */
export function formatAgentPretty(agent: AgentInfo): string[] {
  const label = (k: string) => (k === 'spiffeId' ? 'SPIFFE ID' : k.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase()));
  const keys = ['spiffeId', ...Object.keys(agent).filter((k) => k !== 'spiffeId')];
  const width = Math.max(...keys.map((k) => label(k).length));
  return [...keys.filter((k) => agent[k] !== undefined).map((k) => `${label(k).padEnd(width)} : ${valueText(k, agent[k])}`), ''];
}

function agentPath(opts: Record<string, unknown>, suffix = ''): string {
  const id = parseSpiffeIdFlag('--spiffeID', requireFlag('--spiffeID', opts['spiffeID'] as string | undefined));
  return `${AGENTS}/${encodeURIComponent(id)}${suffix}`;
}

export function registerAgentCommands(program: Command, leaf: LeafBuilder): void {
  const agent = addGroup(program, 'agent', 'Manage attested agents', 'wisp agent list');

  const list = leaf(agent, 'list', 'Lists attested agents', ['wisp agent list', 'wisp agent list --output json']);
  list.action(async (ctx) => {
    const agents: AgentInfo[] = [];
    let pageToken: string | undefined;
    do {
      const page = await ctx.client().request<{ agents: AgentInfo[]; nextPageToken?: string }>('GET', AGENTS, { query: { pageToken } });
      agents.push(...page.agents);
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
    if (ctx.output === 'json') return ctx.printJson({ agents });
    if (agents.length === 0) return ctx.print('No attested agents found');
    ctx.print(`Found ${agents.length} attested agent${agents.length === 1 ? '' : 's'}:`, '', ...agents.flatMap(formatAgentPretty));
  });

  const show = leaf(agent, 'show', 'Shows the details of an attested agent', ['wisp agent show --spiffeID spiffe://example.org/spire/agent/join_token/abc']);
  show.command.option('--spiffeID <id>', 'the SPIFFE ID of the agent');
  show.action(async (ctx, opts) => {
    const res = await ctx.client().request<{ agent?: AgentInfo } & AgentInfo>('GET', agentPath(opts));
    const a = (res.agent ?? res) as AgentInfo;
    if (ctx.output === 'json') return ctx.printJson(a);
    ctx.print('Found an attested agent given its SPIFFE ID', '', ...formatAgentPretty(a));
  });

  const count = leaf(agent, 'count', 'Counts attested agents', ['wisp agent count']);
  count.action(async (ctx) => {
    const res = await ctx.client().request<{ count: number }>('GET', `${AGENTS}/count`);
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.print(`${res.count} attested agent${res.count === 1 ? '' : 's'}`);
  });

  const ban = leaf(agent, 'ban', 'Bans an attested agent: its SVID is no longer renewed until it is evicted', ['wisp agent ban --spiffeID spiffe://example.org/spire/agent/join_token/abc']);
  ban.command.option('--spiffeID <id>', 'the SPIFFE ID of the agent to ban');
  ban.action(async (ctx, opts) => {
    const res = await ctx.client().request<unknown>('POST', agentPath(opts, '/ban'));
    if (ctx.output === 'json') return ctx.printJson(res ?? {});
    ctx.print('Agent banned successfully');
  });

  const evict = leaf(agent, 'evict', 'Evicts an attested agent: it must attest again', ['wisp agent evict --spiffeID spiffe://example.org/spire/agent/join_token/abc']);
  evict.command.option('--spiffeID <id>', 'the SPIFFE ID of the agent to evict');
  evict.action(async (ctx, opts) => {
    const res = await ctx.client().request<unknown>('DELETE', agentPath(opts));
    if (ctx.output === 'json') return ctx.printJson(res ?? {});
    ctx.print('Agent evicted successfully');
  });
}
