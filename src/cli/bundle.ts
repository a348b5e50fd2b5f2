/**
 * `wisp bundle show`: the trust domain's bundle, as PEM root certificates or SPIFFE bundle JSON (SPIRE's
 * `spire-server bundle show -format pem|spiffe`); `wisp bundle list|set|delete`: foreign (federated) bundles,
 * as SPIRE's `bundle list|set|delete`, from a file or stdin in either format; `wisp bundle count`, SPIRE's
 * count of bundles: the trust domain's own and the federated ones.
 * @module
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { fromBase64 } from '../shared/encoding/base64.js';
import { toPem } from '../shared/encoding/pem.js';
import { WispError } from '../shared/errors.js';
import { addGroup, type LeafBuilder } from './command.js';
import type { CommandContext } from './context.js';
import { parseTrustDomainFlag, readBundleFile, type StoredForeignBundle } from './federation.js';

/** SPIFFE bundle JSON (SPIFFE Trust Domain and Bundle §4): a JWK set with SPIFFE parameters. */
export interface SpiffeBundle {
  keys: { use?: string; kid?: string; x5c?: string[]; [k: string]: unknown }[];
  spiffe_sequence?: number;
  spiffe_refresh_hint?: number;
}

/** The X.509 authorities of a bundle (`use: x509-svid` keys, one certificate each in x5c) as PEM. */
export function bundleToPem(bundle: SpiffeBundle): string {
  const certs = bundle.keys.filter((k) => k.use === 'x509-svid').flatMap((k) => k.x5c?.slice(0, 1) ?? []);
  if (certs.length === 0) throw new WispError('ERR_CA_NOT_READY', 'the bundle has no X.509 authorities yet');
  return certs.map((c) => toPem('CERTIFICATE', fromBase64(c, 'ERR_BAD_REQUEST', 'bundle certificate'))).join('');
}

export function registerBundleCommands(program: Command, leaf: LeafBuilder): void {
  const bundle = addGroup(program, 'bundle', "Show the trust domain's bundle; manage foreign (federated) bundles", 'wisp bundle show --format pem > bundle.pem');
  const show = leaf(bundle, 'show', "Prints the trust domain's bundle", ['wisp bundle show --format pem > bundle.pem', 'wisp bundle show --format spiffe']);
  show.command.addOption(new Option('--format <format>', 'pem (X.509 authorities) or spiffe (SPIFFE bundle JSON)').choices(['pem', 'spiffe']).default('pem'));
  show.action(async (ctx, opts) => {
    const res = await ctx.client().request<SpiffeBundle>('GET', '/admin/v1/bundle');
    if (ctx.output === 'json' || opts['format'] === 'spiffe') return ctx.printJson(res);
    ctx.io.stdout(bundleToPem(res));
  });

  const count = leaf(bundle, 'count', "Counts bundles: the trust domain's own plus the federated ones, as SPIRE", ['wisp bundle count']);
  count.action(async (ctx) => {
    const res = await ctx.client().request<{ bundles: StoredForeignBundle[] }>('GET', '/admin/v1/bundles');
    const n = res.bundles.length + 1;
    if (ctx.output === 'json') return ctx.printJson({ count: n, federated: res.bundles.length });
    ctx.print(`${n} bundle${n === 1 ? '' : 's'}`);
  });

  const formatOption = () => new Option('--format <format>', 'pem (X.509 authorities) or spiffe (SPIFFE bundle JSON)').choices(['pem', 'spiffe']).default('pem');
  const printForeign = (ctx: CommandContext, b: StoredForeignBundle, format: unknown) => {
    if (format === 'spiffe') return ctx.print(`# ${b.trustDomain}`, JSON.stringify(b.bundle, null, 2));
    const pem = b.bundle.keys.some((k) => k.use === 'x509-svid') ? bundleToPem(b.bundle) : '(no X.509 authorities)\n';
    ctx.io.stdout(`# ${b.trustDomain}\n${pem}`);
  };

  const list = leaf(bundle, 'list', 'Lists foreign (federated) bundles, or one with --id', ['wisp bundle list', 'wisp bundle list --id partner.example --format spiffe']);
  list.command.option('--id <td>', 'only the bundle of this trust domain').addOption(formatOption());
  list.action(async (ctx, opts) => {
    if (opts['id'] !== undefined) {
      const td = parseTrustDomainFlag('--id', opts['id'] as string);
      const res = await ctx.client().request<{ bundle: StoredForeignBundle }>('GET', `/admin/v1/bundles/${td}`);
      if (ctx.output === 'json') return ctx.printJson(res);
      return printForeign(ctx, res.bundle, opts['format']);
    }
    const res = await ctx.client().request<{ bundles: StoredForeignBundle[] }>('GET', '/admin/v1/bundles');
    if (ctx.output === 'json') return ctx.printJson(res);
    for (const b of res.bundles) printForeign(ctx, b, opts['format']);
  });

  const set = leaf(bundle, 'set', "Creates or replaces a foreign trust domain's bundle", [
    'wisp bundle set --id partner.example --path partner.pem',
    'curl -s https://partner.example/bundle | wisp bundle set --id partner.example --format spiffe --path -',
  ]);
  set.command.option('--id <td>', 'the foreign trust domain').option('--path <file>', "the bundle file; '-' reads stdin", '-').addOption(formatOption());
  set.action(async (ctx, opts) => {
    const td = parseTrustDomainFlag('--id', opts['id'] as string | undefined);
    const text = await readBundleFile(ctx, opts['path'] as string, opts['format'] as string);
    const res = await ctx.client().request<{ bundle: StoredForeignBundle }>('PUT', `/admin/v1/bundles/${td}`, { body: { bundle: text } });
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.print(`Bundle of ${td} set (sequence ${res.bundle.sequence ?? '-'})`);
  });

  const del = leaf(bundle, 'delete', "Deletes a foreign trust domain's bundle", ['wisp bundle delete --id partner.example']);
  del.command.option('--id <td>', 'the foreign trust domain');
  del.action(async (ctx, opts) => {
    const td = parseTrustDomainFlag('--id', opts['id'] as string | undefined);
    await ctx.client().request('DELETE', `/admin/v1/bundles/${td}`);
    if (ctx.output === 'json') return ctx.printJson({ trustDomain: td, deleted: true });
    ctx.print(`Bundle of ${td} deleted`);
  });
}
