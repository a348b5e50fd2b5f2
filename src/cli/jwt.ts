/**
 * `wisp jwt mint`: a JWT-SVID for any SPIFFE ID of the trust domain, minted by the issuer (SPIRE's
 * `spire-server jwt mint`).
 * @module
 */
import type { Command } from 'commander';
import { PRIVATE_FILE_MODE, writeFileAtomic } from '../node/file-output.js';
import { addGroup, type LeafBuilder } from './command.js';
import { collect, parseSpiffeIdFlag, parseTtlFlag, requireFlag } from './flags.js';

export function registerJwtCommands(program: Command, leaf: LeafBuilder): void {
  const jwt = addGroup(program, 'jwt', 'Mint JWT-SVIDs', 'wisp jwt mint --spiffeID spiffe://example.org/web --audience api');
  const mint = leaf(jwt, 'mint', 'Mints a JWT-SVID', [
    'wisp jwt mint --spiffeID spiffe://example.org/web --audience https://api.example.org --ttl 300',
  ]);
  mint.command
    .option('--spiffeID <id>', 'SPIFFE ID of the JWT-SVID')
    .option('--audience <aud>', 'audience claim; repeatable', collect)
    .option('--ttl <seconds>', "TTL of the JWT-SVID (default: the issuer's)")
    .option('--write <file>', 'write the token to this file (0600) instead of stdout');
  mint.action(async (ctx, opts) => {
    const spiffeId = parseSpiffeIdFlag('--spiffeID', requireFlag('--spiffeID', opts['spiffeID'] as string | undefined));
    const audience = requireFlag('--audience', opts['audience'] as string[] | undefined);
    const ttlSeconds = parseTtlFlag('--ttl', opts['ttl'] as string | undefined);
    const res = await ctx.client().request<{ token: string; expiresAt: number }>('POST', '/admin/v1/jwt-svids/mint', { body: { spiffeId, audience, ttlSeconds } });
    const write = opts['write'] as string | undefined;
    if (write) await writeFileAtomic(write, `${res.token}\n`, PRIVATE_FILE_MODE);
    if (ctx.output === 'json') return ctx.printJson(res);
    if (write) ctx.print(`JWT-SVID written to ${write}`);
    else ctx.print(res.token);
  });
}
