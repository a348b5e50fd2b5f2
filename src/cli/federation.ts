/**
 * `wisp federation create|list|show|update|delete|refresh` (SPIRE's `spire-server federation …`): federation
 * relationships with other trust domains. `refresh` of an `https_web` relationship asks the issuer to fetch
 * now; of an `https_spiffe` one, fetches here over TLS authenticated with the stored foreign bundle and the
 * endpoint SPIFFE ID (a Worker cannot), and submits the bundle, or the error, to the issuer.
 * @module
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { looksLikePem } from '../shared/encoding/pem.js';
import { WispError } from '../shared/errors.js';
import type { FederationRelationship } from '../shared/federation/relationship.js';
import type { SpiffeBundleJson } from '../shared/spiffe/bundle.js';
import { parseTrustDomain, type TrustDomain } from '../shared/spiffe/id.js';
import { addGroup, type LeafBuilder } from './command.js';
import { CliUsageError, type CommandContext } from './context.js';
import { requireFlag } from './flags.js';

export interface StoredForeignBundle {
  trustDomain: string;
  bundle: SpiffeBundleJson;
  sequence?: number;
  refreshHintSeconds?: number;
  updatedAt: number;
}

interface ShowResponse {
  relationship: FederationRelationship;
  bundle?: StoredForeignBundle;
}

/** A trust domain flag: a name, or SPIRE's `spiffe://name` spelling. */
export function parseTrustDomainFlag(flag: string, value: string | undefined): TrustDomain {
  const raw = requireFlag(flag, value);
  const name = raw.startsWith('spiffe://') ? raw.slice('spiffe://'.length) : raw;
  try {
    return parseTrustDomain(name);
  } catch (e) {
    throw new CliUsageError(`${flag} "${raw}": ${e instanceof Error ? e.message : 'invalid trust domain'}`);
  }
}

/** Reads a bundle file (or stdin for `-`) and checks it has the declared format; the issuer parses it strictly. */
export async function readBundleFile(ctx: CommandContext, path: string, format: string | undefined): Promise<string> {
  const text = (await ctx.readInput(path)).trim();
  const looksPem = looksLikePem(text);
  if (format === 'pem' && !looksPem) throw new CliUsageError(`${path}: not PEM (use --format spiffe for SPIFFE bundle JSON)`);
  if (format === 'spiffe' && !text.startsWith('{')) throw new CliUsageError(`${path}: not SPIFFE bundle JSON (use --format pem for certificates)`);
  return text;
}

const when = (s: number) => (s === 0 ? 'never' : new Date(s * 1000).toISOString());

function printRelationship(ctx: CommandContext, r: FederationRelationship, bundle?: StoredForeignBundle): void {
  ctx.print(
    `Trust domain              : ${r.trustDomain}`,
    `Bundle endpoint URL       : ${r.bundleEndpointUrl}`,
    `Bundle endpoint profile   : ${r.bundleEndpointProfile}`,
    ...(r.endpointSpiffeId ? [`Endpoint SPIFFE ID        : ${r.endpointSpiffeId}`] : []),
    ...(r.bundleEndpointProfile === 'https_spiffe' ? [`Refreshed by              : ${r.refreshAgentId ?? 'wisp federation refresh only'}`] : []),
    `Last refresh              : ${when(r.lastRefreshAt)}`,
    `Last refresh error        : ${r.lastRefreshError || '-'}`,
    ...(r.bundleEndpointProfile === 'https_web' ? [`Next refresh              : ${when(r.nextRefreshAt)}`] : []),
    ...(bundle ? [`Bundle sequence           : ${bundle.sequence ?? '-'} (updated ${when(bundle.updatedAt)})`] : ['Bundle                    : none yet']),
    '',
  );
}

function addRelationshipFlags(command: Command): void {
  command
    .option('--trustDomain <td>', 'the foreign trust domain (name, or spiffe://name)')
    .option('--bundleEndpointURL <url>', 'URL of the foreign bundle endpoint (https; http only for loopback hosts)')
    .addOption(new Option('--bundleEndpointProfile <profile>', 'endpoint profile').choices(['https_web', 'https_spiffe']))
    .option('--endpointSpiffeID <id>', 'https_spiffe: the SPIFFE ID the endpoint presents')
    .option('--refreshAgentID <id>', "https_spiffe: the agent (of this trust domain) that refreshes the bundle; '' to unset")
    .option('--trustDomainBundlePath <file>', "the foreign trust domain's bundle (bootstrap; required for https_spiffe); '-' reads stdin")
    .addOption(new Option('--trustDomainBundleFormat <format>', 'format of --trustDomainBundlePath').choices(['pem', 'spiffe']));
}

async function relationshipBody(ctx: CommandContext, o: Record<string, unknown>, current?: FederationRelationship): Promise<Record<string, unknown>> {
  const profile = (o['bundleEndpointProfile'] as string | undefined) ?? current?.bundleEndpointProfile ?? 'https_web';
  const body: Record<string, unknown> = {
    bundleEndpointUrl: requireFlag('--bundleEndpointURL', (o['bundleEndpointURL'] as string | undefined) ?? current?.bundleEndpointUrl),
    bundleEndpointProfile: profile,
  };
  if (profile === 'https_spiffe') {
    body.endpointSpiffeId = requireFlag('--endpointSpiffeID', (o['endpointSpiffeID'] as string | undefined) ?? current?.endpointSpiffeId);
    const agent = (o['refreshAgentID'] as string | undefined) ?? current?.refreshAgentId;
    if (agent) body.refreshAgentId = agent;
  }
  const path = o['trustDomainBundlePath'] as string | undefined;
  if (path !== undefined) body.trustDomainBundle = await readBundleFile(ctx, path, o['trustDomainBundleFormat'] as string | undefined);
  return body;
}

/** Fetches an https_spiffe endpoint here and submits the outcome; returns the issuer's answer. */
async function refreshFromNode(ctx: CommandContext, td: TrustDomain, shown: ShowResponse): Promise<{ status: string; relationship: FederationRelationship }> {
  const path = `/admin/v1/federation/${td}/refresh`;
  const r = shown.relationship;
  if (!shown.bundle) throw new WispError('ERR_BUNDLE_NOT_FOUND', `no stored bundle of "${td}" to authenticate its endpoint: wisp bundle set --id ${td} --path …`);
  // node:https and TLS verification live with the agent; loaded only for this command
  const { fetchBundleOverSpiffeTls } = await import('../node/spiffe-bundle-fetch.js');
  let text: string;
  try {
    text = await fetchBundleOverSpiffeTls({
      url: r.bundleEndpointUrl,
      endpointSpiffeId: r.endpointSpiffeId!,
      trustBundle: shown.bundle.bundle,
      trustDomain: td,
      timeoutMs: ctx.config().timeoutSeconds * 1000,
    });
    // parsed here too, so a malformed answer is reported with the endpoint's name and recorded (the parser
    // loads @peculiar/x509: only for this command)
    const { parseForeignBundle } = await import('../shared/federation/foreign-bundle.js');
    await parseForeignBundle(text, td);
  } catch (e) {
    const message = e instanceof WispError ? `${e.code}: ${e.message}` : String(e);
    await ctx.client().request('POST', path, { body: { error: message } });
    throw e;
  }
  return ctx.client().request('POST', path, { body: { bundle: JSON.parse(text) as unknown } });
}

export function registerFederationCommands(program: Command, leaf: LeafBuilder): void {
  const fed = addGroup(program, 'federation', 'Manage federation relationships with other trust domains', 'wisp federation list');

  const create = leaf(fed, 'create', 'Creates a federation relationship with a foreign trust domain', [
    'wisp federation create --trustDomain partner.example --bundleEndpointURL https://partner.example/bundle',
    'wisp federation create --trustDomain partner.example --bundleEndpointURL https://spire.partner.example:8443 --bundleEndpointProfile https_spiffe --endpointSpiffeID spiffe://partner.example/spire/server --trustDomainBundlePath partner.pem --trustDomainBundleFormat pem',
  ]);
  addRelationshipFlags(create.command);
  create.action(async (ctx, o) => {
    const trustDomain = parseTrustDomainFlag('--trustDomain', o['trustDomain'] as string | undefined);
    const body = { trustDomain, ...(await relationshipBody(ctx, o)) };
    const res = await ctx.client().request<{ relationship: FederationRelationship }>('POST', '/admin/v1/federation', { body });
    if (ctx.output === 'json') return ctx.printJson(res);
    printRelationship(ctx, res.relationship);
  });

  const update = leaf(fed, 'update', 'Updates a federation relationship (flags not given keep their value)', [
    'wisp federation update --trustDomain partner.example --bundleEndpointURL https://partner.example/v2/bundle',
  ]);
  addRelationshipFlags(update.command);
  update.action(async (ctx, o) => {
    const trustDomain = parseTrustDomainFlag('--trustDomain', o['trustDomain'] as string | undefined);
    const current = await ctx.client().request<ShowResponse>('GET', `/admin/v1/federation/${trustDomain}`);
    const body = await relationshipBody(ctx, o, current.relationship);
    const res = await ctx.client().request<{ relationship: FederationRelationship }>('PUT', `/admin/v1/federation/${trustDomain}`, { body });
    if (ctx.output === 'json') return ctx.printJson(res);
    printRelationship(ctx, res.relationship);
  });

  const list = leaf(fed, 'list', 'Lists federation relationships', ['wisp federation list', 'wisp federation list --output json']);
  list.action(async (ctx) => {
    const res = await ctx.client().request<{ relationships: FederationRelationship[] }>('GET', '/admin/v1/federation');
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.print(`Found ${res.relationships.length} federation relationship${res.relationships.length === 1 ? '' : 's'}`, '');
    for (const r of res.relationships) printRelationship(ctx, r);
  });

  const show = leaf(fed, 'show', 'Shows a federation relationship, its last refresh and last error', ['wisp federation show --trustDomain partner.example']);
  show.command.option('--trustDomain <td>', 'the foreign trust domain');
  show.action(async (ctx, o) => {
    const td = parseTrustDomainFlag('--trustDomain', o['trustDomain'] as string | undefined);
    const res = await ctx.client().request<ShowResponse>('GET', `/admin/v1/federation/${td}`);
    if (ctx.output === 'json') return ctx.printJson(res);
    printRelationship(ctx, res.relationship, res.bundle);
  });

  const del = leaf(fed, 'delete', "Deletes a federation relationship and the foreign trust domain's bundle", ['wisp federation delete --id partner.example']);
  del.command.option('--id <td>', 'the foreign trust domain');
  del.action(async (ctx, o) => {
    const td = parseTrustDomainFlag('--id', o['id'] as string | undefined);
    await ctx.client().request('DELETE', `/admin/v1/federation/${td}`);
    if (ctx.output === 'json') return ctx.printJson({ trustDomain: td, deleted: true });
    ctx.print(`Deleted federation relationship with ${td}`);
  });

  const refresh = leaf(fed, 'refresh', "Refreshes the foreign trust domain's bundle from its bundle endpoint now", ['wisp federation refresh --id partner.example']);
  refresh.command.option('--id <td>', 'the foreign trust domain');
  refresh.action(async (ctx, o) => {
    const td = parseTrustDomainFlag('--id', o['id'] as string | undefined);
    const shown = await ctx.client().request<ShowResponse>('GET', `/admin/v1/federation/${td}`);
    const res =
      shown.relationship.bundleEndpointProfile === 'https_spiffe'
        ? await refreshFromNode(ctx, td, shown)
        : await ctx.client().request<{ status: string; relationship: FederationRelationship }>('POST', `/admin/v1/federation/${td}/refresh`);
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.print(`Bundle of ${td} ${res.status === 'updated' ? 'updated' : 'unchanged'}`);
  });
}
