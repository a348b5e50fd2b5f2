/**
 * `wisp localauthority x509|jwt show|prepare|activate|taint|revoke`: the trust domain's own signing keys,
 * as SPIRE's `spire-server localauthority` (same verbs, `-authorityID`, `-output pretty|json`, the same
 * pretty text). The issuer applies SPIRE's rules (src/shared/ca/local-authority.ts).
 * @module
 */
import type { Command } from 'commander';
import type { AuthorityState, AuthorityStates } from '../shared/ca/local-authority.js';
import type { CommandContext } from './context.js';
import { addGroup, type LeafBuilder } from './command.js';
import { requireFlag } from './flags.js';

const KINDS = { x509: 'X.509', jwt: 'JWT' } as const;
const CHANGES = {
  prepare: { field: 'preparedAuthority', title: 'Prepared', help: 'Prepares a new {K} authority for use by generating a new key and injecting it into the bundle' },
  activate: { field: 'activatedAuthority', title: 'Activated', help: 'Activates a prepared {K} authority for use by every signing operation from now on' },
  taint: { field: 'taintedAuthority', title: 'Tainted', help: 'Marks the previously active {K} authority as being tainted: agents replace what it signed' },
  revoke: { field: 'revokedAuthority', title: 'Revoked', help: 'Revokes the previously active (tainted) {K} authority by removing it from the bundle' },
} as const;

/** SPIRE's authoritycommon pretty form; Go prints times as "2006-01-02 15:04:05 +0000 UTC". */
function printState(ctx: CommandContext, kind: keyof typeof KINDS, s: AuthorityState): void {
  const at = new Date(s.expiresAt * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' +0000 UTC');
  const lines = [`  Authority ID: ${s.authorityId}`, `  Expires at: ${at}`];
  if (s.tainted) lines.push('  Tainted: true');
  if (kind === 'x509') lines.push(s.upstreamAuthoritySubjectKeyId ? `  Upstream authority Subject Key ID: ${s.upstreamAuthoritySubjectKeyId}` : '  Upstream authority ID: No upstream authority');
  ctx.print(...lines);
}

export function registerLocalAuthorityCommands(program: Command, leaf: LeafBuilder): void {
  const top = addGroup(program, 'localauthority', "Manage the trust domain's local authorities (X.509 CA and JWT keys)", 'wisp localauthority x509 show');
  for (const kind of Object.keys(KINDS) as Array<keyof typeof KINDS>) {
    const K = KINDS[kind];
    const group = addGroup(top, kind, `Manage the local ${K} authorities`, `wisp localauthority ${kind} show`);
    leaf(group, 'show', `Shows the local ${K} authorities`, [`wisp localauthority ${kind} show -output json`]).action(async (ctx) => {
      const res = await ctx.client().request<AuthorityStates>('GET', `/admin/v1/localauthority/${kind}`);
      if (ctx.output === 'json') return ctx.printJson(res);
      for (const [role, title] of [['active', 'Active'], ['prepared', 'Prepared'], ['old', 'Old']] as const) {
        ctx.print(`${title} ${K} authority:`);
        const s = res[role];
        if (s) printState(ctx, kind, s);
        else ctx.print(`  No ${role} ${K} authority found`);
        if (role !== 'old') ctx.print('');
      }
    });
    for (const [op, spec] of Object.entries(CHANGES) as Array<[keyof typeof CHANGES, (typeof CHANGES)[keyof typeof CHANGES]]>) {
      const needsId = op !== 'prepare';
      const cmd = leaf(group, op, spec.help.replace('{K}', K), [`wisp localauthority ${kind} ${op}${needsId ? ' -authorityID <id>' : ''}`]);
      if (needsId) cmd.command.option('--authorityID <id>', `the authority ID of the ${K} authority to ${op}`);
      cmd.action(async (ctx, opts) => {
        const body = needsId ? { authorityId: requireFlag('--authorityID', opts['authorityID'] as string | undefined) } : {};
        const res = await ctx.client().request<Record<string, AuthorityState>>('POST', `/admin/v1/localauthority/${kind}/${op}`, { body });
        if (ctx.output === 'json') return ctx.printJson(res);
        ctx.print(`${spec.title} ${K} authority:`);
        printState(ctx, kind, res[spec.field]!);
      });
    }
  }
}
