/**
 * `wisp bundle show`: the trust domain's bundle, as PEM root certificates or SPIFFE bundle JSON (SPIRE's
 * `spire-server bundle show -format pem|spiffe`).
 * @module
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { WispError } from '../shared/errors.js';
import { addGroup, type LeafBuilder } from './command.js';

/** SPIFFE bundle JSON (SPIFFE Trust Domain and Bundle §4): a JWK set with SPIFFE parameters. */
export interface SpiffeBundle {
  keys: { use?: string; kid?: string; x5c?: string[]; [k: string]: unknown }[];
  spiffe_sequence?: number;
  spiffe_refresh_hint?: number;
}

/** Base64 DER → a PEM block. */
export function derBase64ToPem(der: string, label = 'CERTIFICATE'): string {
  const body = der.replace(/\s+/g, '').match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** The X.509 authorities of a bundle (`use: x509-svid` keys, one certificate each in x5c) as PEM. */
export function bundleToPem(bundle: SpiffeBundle): string {
  const certs = bundle.keys.filter((k) => k.use === 'x509-svid').flatMap((k) => k.x5c?.slice(0, 1) ?? []);
  if (certs.length === 0) throw new WispError('ERR_CA_NOT_READY', 'the bundle has no X.509 authorities yet');
  return certs.map((c) => derBase64ToPem(c)).join('');
}

export function registerBundleCommands(program: Command, leaf: LeafBuilder): void {
  const bundle = addGroup(program, 'bundle', "Show the trust domain's bundle", 'wisp bundle show --format pem > bundle.pem');
  const show = leaf(bundle, 'show', "Prints the trust domain's bundle", ['wisp bundle show --format pem > bundle.pem', 'wisp bundle show --format spiffe']);
  show.command.addOption(new Option('--format <format>', 'pem (X.509 authorities) or spiffe (SPIFFE bundle JSON)').choices(['pem', 'spiffe']).default('pem'));
  show.action(async (ctx, opts) => {
    const res = await ctx.client().request<SpiffeBundle>('GET', '/admin/v1/bundle');
    if (ctx.output === 'json' || opts['format'] === 'spiffe') return ctx.printJson(res);
    ctx.io.stdout(bundleToPem(res));
  });
}
