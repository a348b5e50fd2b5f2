/**
 * `wisp agent list|show|count|ban|evict|purge`: attested agents (SPIRE's `spire-server agent`). Evicting
 * removes the agent so it must attest again; banning keeps it out until it is evicted; purging deletes the
 * agents whose SVID expired a while ago (default 30 days). list and count take SPIRE's filters, applied by
 * the issuer.
 * @module
 */
import type { Command } from 'commander';
import { formatSelector } from '../shared/registry/selectors.js';
import { parseRfc3339Ms } from '../shared/audit-event.js';
import { parseDurationSeconds } from '../shared/duration.js';
import { addGroup, type LeafBuilder } from './command.js';
import { CliUsageError } from './context.js';
import { collect, parseMatchFlag, parseSelectorFlags, parseSpiffeIdFlag, requireFlag, SELECTOR_MATCH_MODES } from './flags.js';

/** SPIRE's `agent purge -expiredFor` default: 30 days. */
export const PURGE_EXPIRED_FOR_DEFAULT = '30d';

/** Go's time.String() layout that SPIRE's -expiresBefore documents: `2006-01-02 15:04:05 -0700 -07` (zone name optional). */
const GO_TIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?) ([+-]\d{2})(\d{2})(?: \S+)?$/;

/**
 * `-expiresBefore`: RFC 3339, a date (`2026-01-02`, midnight UTC) or SPIRE's Go layout; seconds since the epoch.
 * @example parseExpiresBeforeFlag('2026-01-02') // 1767312000
 */
export function parseExpiresBeforeFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const go = GO_TIME.exec(value);
  const rfc3339 = go ? `${go[1]}T${go[2]}${go[3]}:${go[4]}` : /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  const ms = parseRfc3339Ms(rfc3339);
  if (ms === undefined) throw new CliUsageError(`--expiresBefore "${value}": must be an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or "2026-01-02 15:04:05 -0700"`);
  return Math.floor(ms / 1000);
}

/** list/count filters as admin API query parameters (validated locally). */
function agentFilterQuery(opts: Record<string, unknown>): Record<string, string | string[] | undefined> {
  const selectors = parseSelectorFlags(opts['selector'] as string[] | undefined).map(formatSelector);
  const match = parseMatchFlag('--matchSelectorsOn', opts['matchSelectorsOn'] as string | undefined);
  const banned = opts['banned'] as string | undefined;
  if (banned !== undefined && banned !== 'true' && banned !== 'false') throw new CliUsageError(`--banned "${banned}": must be true or false`);
  const expiresBefore = parseExpiresBeforeFlag(opts['expiresBefore'] as string | undefined);
  return {
    selector: selectors.length ? selectors : undefined,
    match: selectors.length ? match : undefined,
    attestationType: opts['attestationType'] as string | undefined,
    banned,
    expiresBefore: expiresBefore === undefined ? undefined : String(expiresBefore),
  };
}

function addAgentFilterOptions(command: Command): Command {
  return command
    .option('--selector <type:value>', 'only agents with these node selectors; repeatable', collect)
    .option('--matchSelectorsOn <mode>', `how --selector matches: ${SELECTOR_MATCH_MODES.join(', ')} (default superset)`)
    .option('--attestationType <type>', 'only agents attested this way (join_token, x509pop, aws_iid, k8s_psat, ...)')
    .option('--banned <true|false>', 'only banned (true) or not banned (false) agents')
    .option('--expiresBefore <time>', 'only agents whose SVID expires before this (RFC 3339, a date, or SPIRE\'s "2006-01-02 15:04:05 -0700")');
}

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

  const list = leaf(agent, 'list', 'Lists attested agents', [
    'wisp agent list',
    'wisp agent list --attestationType x509pop --banned false --output json',
    'wisp agent list --selector aws_iid:tag:env:prod --expiresBefore 2026-01-02',
  ]);
  addAgentFilterOptions(list.command);
  list.action(async (ctx, opts) => {
    const query = agentFilterQuery(opts);
    const agents: AgentInfo[] = [];
    let pageToken: string | undefined;
    do {
      const page = await ctx.client().request<{ agents: AgentInfo[]; nextPageToken?: string }>('GET', AGENTS, { query: { ...query, pageToken } });
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

  const count = leaf(agent, 'count', 'Counts attested agents', ['wisp agent count', 'wisp agent count --banned true']);
  addAgentFilterOptions(count.command);
  count.action(async (ctx, opts) => {
    const res = await ctx.client().request<{ count: number }>('GET', `${AGENTS}/count`, { query: agentFilterQuery(opts) });
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

  const purge = leaf(agent, 'purge', 'Deletes agents whose SVID expired longer ago than --expiredFor (banned agents are kept)', [
    'wisp agent purge --dryRun',
    'wisp agent purge --expiredFor 7d',
  ]);
  purge.command
    .option('--expiredFor <duration>', `how long ago the SVID must have expired: seconds or 90s, 5m, 720h, 30d (default ${PURGE_EXPIRED_FOR_DEFAULT})`)
    .option('--dryRun', 'only print the agents that would be purged');
  purge.action(async (ctx, opts) => {
    const raw = (opts['expiredFor'] as string | undefined) ?? PURGE_EXPIRED_FOR_DEFAULT;
    const expiredFor = parseDurationSeconds(raw);
    if (expiredFor === undefined) throw new CliUsageError(`--expiredFor "${raw}": must be whole seconds or a duration such as 90s, 5m, 720h, 30d`);
    const dryRun = opts['dryRun'] === true;
    const res = await ctx.client().request<{ agents: AgentInfo[]; dryRun: boolean }>('POST', `${AGENTS}/purge`, { body: { expiredFor, dryRun } });
    if (ctx.output === 'json') return ctx.printJson(res);
    if (res.agents.length === 0) return ctx.print('No agents to purge.');
    const n = res.agents.length;
    const lines = res.agents.map((a) => `${dryRun ? 'Would purge' : 'Purged'} ${a.spiffeId} (SVID expired ${valueText('expiresAt', a['expiresAt'])})`);
    ctx.print(`Found ${n} expired agent${n === 1 ? '' : 's'}${dryRun ? ' (dry run: nothing deleted)' : ''}`, '', ...lines);
  });
}
