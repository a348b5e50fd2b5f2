/**
 * `wisp token generate`: a single-use join token for attesting an agent (SPIRE's `spire-server token
 * generate`).
 * @module
 */
import type { Command } from 'commander';
import { addGroup, type LeafBuilder } from './command.js';
import { parseSpiffeIdFlag, parseTtlFlag } from './flags.js';

interface JoinTokenResponse {
  token: string;
  expiresAt: number;
  spiffeId?: string;
}

export function registerTokenCommands(program: Command, leaf: LeafBuilder): void {
  const token = addGroup(program, 'token', 'Manage join tokens', 'wisp token generate --ttl 600');
  const generate = leaf(token, 'generate', 'Generates a join token', [
    'wisp token generate --ttl 600',
    'wisp token generate --spiffeID spiffe://example.org/nodes/build-01',
  ]);
  generate.command
    .option('--spiffeID <id>', 'additional SPIFFE ID to assign the token owner (an alias entry)')
    .option('--ttl <seconds>', 'token TTL in seconds (default: the issuer\'s)');
  generate.action(async (ctx, opts) => {
    const spiffeId = opts['spiffeID'] === undefined ? undefined : parseSpiffeIdFlag('--spiffeID', opts['spiffeID'] as string);
    const ttlSeconds = parseTtlFlag('--ttl', opts['ttl'] as string | undefined);
    const res = await ctx.client().request<JoinTokenResponse>('POST', '/admin/v1/join-tokens', { body: { ttlSeconds, spiffeId } });
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.print(`Token: ${res.token}`);
  });
}
