/**
 * `wisp audit list`: the issuer's audit log of admin requests (GET /admin/v1/audit), oldest first, all
 * pages. `-since` takes an RFC 3339 time or a duration back from now (`24h`, `7d`). See docs/audit.md.
 * @module
 */
import type { Command } from 'commander';
import { parseRfc3339Ms, type AuditEvent } from '../shared/audit-event.js';
import { parseDurationSeconds } from '../shared/duration.js';
import { addGroup, type LeafBuilder } from './command.js';
import { CliUsageError } from './context.js';

/** An audit event as the admin API returns it (its `id` is not shown). */
export type AuditEventInfo = Omit<AuditEvent, 'id'>;


/** `-since`: an RFC 3339 time as is, or a duration before `nowMs` turned into one. */
export function parseSinceFlag(value: string | undefined, nowMs: number): string | undefined {
  if (value === undefined) return undefined;
  if (parseRfc3339Ms(value) !== undefined) return value;
  const seconds = /^\d+$/.test(value) ? undefined : parseDurationSeconds(value);
  if (seconds === undefined) throw new CliUsageError(`--since "${value}": must be an RFC 3339 time (2026-01-02T15:04:05Z) or a duration such as 30m, 24h, 7d`);
  return new Date(nowMs - seconds * 1000).toISOString();
}

/** One event as a line: time, principal, action, outcome, objects, request ID. */
export function formatAuditLine(e: AuditEventInfo): string {
  const outcome = e.errorCode ? `${e.status} ${e.errorCode}` : String(e.status);
  const objects = e.objectIds.length ? ` ${e.objectIds.join(',')}` : '';
  return `${new Date(e.at * 1000).toISOString()} ${e.principal} ${e.action} ${outcome}${objects} request=${e.requestId}${e.sourceIp ? ` from=${e.sourceIp}` : ''}`;
}

export function registerAuditCommands(program: Command, leaf: LeafBuilder): void {
  const audit = addGroup(program, 'audit', 'Read the audit log of admin requests', 'wisp audit list --since 24h');
  const list = leaf(audit, 'list', 'Lists audit events, oldest first', [
    'wisp audit list --since 24h',
    'wisp audit list --since 2026-01-02T00:00:00Z --action entry.delete --output json',
    'wisp audit list --principal spiffe://example.org/ops/admin',
  ]);
  list.command
    .option('--since <time>', 'RFC 3339 time, or a duration back from now (24h, 7d)')
    .option('--principal <p>', 'only events of this principal (admin-token, or an admin SPIFFE ID)')
    .option('--action <a>', 'only events of this action (entry.create, agent.ban, ...)')
    .option('--objectID <id>', 'only events touching this object (entry ID, SPIFFE ID, trust domain)');
  list.action(async (ctx, opts) => {
    const query = {
      since: parseSinceFlag(opts['since'] as string | undefined, Date.now()),
      principal: opts['principal'] as string | undefined,
      action: opts['action'] as string | undefined,
      objectId: opts['objectID'] as string | undefined,
    };
    const events: AuditEventInfo[] = [];
    let pageToken: string | undefined;
    do {
      const page = await ctx.client().request<{ events: AuditEventInfo[]; nextPageToken?: string }>('GET', '/admin/v1/audit', { query: { ...query, pageToken } });
      events.push(...page.events);
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
    if (ctx.output === 'json') return ctx.printJson({ events });
    if (events.length === 0) return ctx.print('No audit events found');
    ctx.print(...events.map(formatAuditLine));
  });
}
