/**
 * `wisp healthcheck`: is the issuer up (`GET /healthz`, no credential)? SPIRE's `spire-server healthcheck`.
 * @module
 */
import type { Command } from 'commander';
import { WispError } from '../shared/errors.js';
import type { LeafBuilder } from './command.js';

export function registerHealthcheckCommand(program: Command, leaf: LeafBuilder): void {
  const health = leaf(program, 'healthcheck', 'Determines the health of the issuer', ['wisp healthcheck --serverURL https://wisp.example.org']);
  health.command.option('--verbose', 'print the health details');
  health.action(async (ctx, opts) => {
    let res: Record<string, unknown>;
    try {
      res = await ctx.client().request<Record<string, unknown>>('GET', '/healthz', { anonymous: true });
    } catch (e) {
      if (e instanceof WispError) throw new WispError(e.code, `server is unhealthy: ${e.message}`);
      throw e;
    }
    if (ctx.output === 'json') return ctx.printJson(res);
    if (opts['verbose']) ctx.print(...Object.entries(res).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`));
    ctx.print('Server is healthy.');
  });
}
