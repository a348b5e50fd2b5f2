/**
 * `wisp entry create|update|delete|show|count`: SPIRE's `spire-server entry` with its flags, plus batches
 * from SPIRE's `-data` JSON (see spire-format.ts) with a result line per entry.
 * @module
 */
import type { Command } from 'commander';
import { WispError, type WispErrorData } from '../shared/errors.js';
import type { Entry, NewEntry } from '../shared/registry/entry.js';
import { jwtSvidClaimsProblem, type JwtSvidExtraClaims } from '../shared/registry/jwt-svid-claims.js';
import { formatSelector } from '../shared/registry/selectors.js';
import { serverId, trustDomainOf, type TrustDomain } from '../shared/spiffe/id.js';
import { sendInBatches, summarizeFailures, type ItemResult } from './batch.js';
import { CliUsageError, type CommandContext } from './context.js';
import {
  collect,
  parseIntegerFlag,
  parseMatchFlag,
  parseSelectorFlags,
  parseSpiffeIdFlag,
  parseTtlFlag,
  requireFlag,
  SELECTOR_MATCH_MODES,
} from './flags.js';
import { addGroup, type LeafBuilder } from './command.js';
import { parseFederatedTrustDomain, parseSpireEntryText, formatSpireEntry, formatSpireEntryFile } from './spire-format.js';

const ENTRIES = '/admin/v1/entries';
/** Entries per list call (the admin API's maximum page size). */
const ENTRY_PAGE_SIZE = 1000;

interface EntryFlags {
  entryID?: string;
  spiffeID?: string;
  parentID?: string;
  selector?: string[];
  x509SVIDTTL?: string;
  jwtSVIDTTL?: string;
  dns?: string[];
  federatesWith?: string[];
  admin?: boolean;
  downstream?: boolean;
  hint?: string;
  jwtSVIDClaims?: string;
  entryExpiry?: string;
  node?: boolean;
  data?: string;
  matchSelectorsOn?: string;
  matchFederatesWithOn?: string;
  file?: string;
}

interface WireBatchResult {
  status: { code: string; message: string };
  entry?: Entry;
}

function addEntryFieldOptions(command: Command): Command {
  return command
    .option('--entryID <id>', 'the registration entry ID (create: optional, chosen by the operator)')
    .option('--spiffeID <id>', 'the SPIFFE ID that this entry represents')
    .option('--parentID <id>', "the SPIFFE ID of this entry's parent")
    .option('--selector <type:value>', 'a colon-delimited type:value selector; repeatable', collect)
    .option('--x509SVIDTTL <seconds>', 'lifetime of X509-SVIDs issued for this entry (0 = issuer default)')
    .option('--jwtSVIDTTL <seconds>', 'lifetime of JWT-SVIDs issued for this entry (0 = issuer default)')
    .option('--dns <name>', 'a DNS name included in X509-SVIDs of this entry; repeatable', collect)
    .option('--federatesWith <td>', 'SPIFFE ID of a trust domain to federate with; repeatable', collect)
    .option('--admin', 'grant the SPIFFE ID of this entry access to the admin API')
    .option('--downstream', 'the entry describes a downstream issuer')
    .option('--hint <hint>', 'a hint for workloads that receive more than one SVID')
    .option('--jwtSVIDClaims <json>', 'extra claims of this entry\'s JWT-SVIDs, a JSON object (no sub, aud, exp, iat, iss, nbf, jti, cnf; at most 4096 bytes)')
    .option('--entryExpiry <epochSeconds>', 'when the entry expires, in seconds since the epoch')
    .option('--node', "a node-alias entry: applies to matching agents, parented to the server's ID")
    .option('--data <file>', "SPIRE's entry -data JSON file ({\"entries\": [...]}); '-' reads stdin; other flags are then ignored");
}

/** A -federatesWith value: a trust domain name or its SPIFFE ID (`spiffe://td`), as SPIRE. */
function federatedTrustDomainFlag(td: string): TrustDomain {
  try {
    return parseFederatedTrustDomain(td);
  } catch (e) {
    throw new WispError((e as WispError).code, `--federatesWith "${td}": ${(e as Error).message}`);
  }
}

/** One entry from flags (validated locally: SPIFFE IDs, selectors, TTLs). */
function entryFromFlags(o: EntryFlags): NewEntry {
  const spiffeId = parseSpiffeIdFlag('--spiffeID', requireFlag('--spiffeID', o.spiffeID));
  const selectors = parseSelectorFlags(requireFlag('--selector', o.selector));
  if (o.node && o.federatesWith?.length) throw new CliUsageError('node entries can not federate (--node with --federatesWith)');
  if (!o.node && !o.parentID) throw new CliUsageError('--parentID is required if --node is not set');
  const parentId = o.node ? serverId(trustDomainOf(spiffeId)) : parseSpiffeIdFlag('--parentID', o.parentID!);
  const entry: NewEntry = {
    spiffeId,
    parentId,
    selectors,
    x509SvidTtl: parseTtlFlag('--x509SVIDTTL', o.x509SVIDTTL) ?? 0,
    jwtSvidTtl: parseTtlFlag('--jwtSVIDTTL', o.jwtSVIDTTL) ?? 0,
    dnsNames: o.dns ?? [],
    federatesWith: (o.federatesWith ?? []).map((td) => federatedTrustDomainFlag(td)),
    admin: o.admin ?? false,
    downstream: o.downstream ?? false,
    hint: o.hint ?? '',
    expiresAt: parseIntegerFlag('--entryExpiry', o.entryExpiry) ?? 0,
  };
  const jwtSvidClaims = parseJwtSvidClaimsFlag(o.jwtSVIDClaims);
  if (jwtSvidClaims) entry.jwtSvidClaims = jwtSvidClaims;
  if (o.entryID) entry.id = o.entryID;
  return entry;
}

/** `--jwtSVIDClaims '{"tenant":"acme"}'`, checked locally by the issuer's own rule. */
function parseJwtSvidClaimsFlag(value: string | undefined): JwtSvidExtraClaims | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (e) {
    throw new CliUsageError(`--jwtSVIDClaims: not valid JSON (${(e as Error).message})`);
  }
  const problem = jwtSvidClaimsProblem(parsed);
  if (problem) throw new CliUsageError(`--jwtSVIDClaims: ${problem}`);
  return Object.keys(parsed as object).length > 0 ? (parsed as JwtSvidExtraClaims) : undefined;
}

function ttlText(seconds: number): string {
  return seconds === 0 ? 'default' : String(seconds);
}

/** SPIRE's `printEntry` layout. */
export function formatEntryPretty(e: Entry): string[] {
  const lines = [
    `Entry ID         : ${e.id}`,
    `SPIFFE ID        : ${e.spiffeId}`,
    `Parent ID        : ${e.parentId}`,
    `Revision         : ${e.revisionNumber}`,
  ];
  if (e.downstream) lines.push('Downstream       : true');
  lines.push(`X509-SVID TTL    : ${ttlText(e.x509SvidTtl)}`, `JWT-SVID TTL     : ${ttlText(e.jwtSvidTtl)}`);
  if (e.expiresAt) lines.push(`Expiration time  : ${new Date(e.expiresAt * 1000).toISOString()}`);
  for (const s of e.selectors) lines.push(`Selector         : ${formatSelector(s)}`);
  for (const td of e.federatesWith) lines.push(`FederatesWith    : ${td}`);
  for (const d of e.dnsNames) lines.push(`DNS name         : ${d}`);
  if (e.admin) lines.push('Admin            : true');
  if (e.hint) lines.push(`Hint             : ${e.hint}`);
  if (e.jwtSvidClaims) lines.push(`JWT-SVID claims  : ${JSON.stringify(e.jwtSvidClaims)}`);
  return [...lines, ''];
}

function isLocalFailure(item: unknown): item is WispErrorData {
  return typeof item === 'object' && item !== null && 'code' in item && 'message' in item && !('spiffeId' in item);
}

/** Reads a `-data` file: per entry either a NewEntry or its local validation error. */
async function readDataFile(ctx: CommandContext, path: string): Promise<(NewEntry | WispErrorData)[]> {
  const parsed = parseSpireEntryText(await ctx.readInput(path), path === '-' ? 'stdin' : path);
  if (parsed.length === 0) throw new CliUsageError(`${path === '-' ? 'stdin' : path}: "entries" is empty`);
  return parsed.map((p) => {
    if (!p.ok) return p.error;
    const { revisionNumber: _ignored, ...entry } = p.value;
    return entry;
  });
}

/** Prints per-entry results of a batch and fails with one summary line if any entry failed. */
function reportBatch(ctx: CommandContext, verb: 'create' | 'update', input: readonly (NewEntry | WispErrorData)[], results: ItemResult<Entry>[]): void {
  if (ctx.output === 'json') {
    ctx.printJson({
      results: results.map((r) => ({ status: r.status, ...(r.value ? { entry: formatSpireEntry(r.value) } : {}) })),
    });
  } else {
    const width = String(results.length).length;
    const lines = results.map((r, i) => {
      const n = `#${String(i + 1).padStart(width)}`;
      const item = input[i]!;
      const id = isLocalFailure(item) ? '(invalid entry)' : item.spiffeId;
      return r.status.code === 'OK' && r.value
        ? `${n} OK      ${r.value.spiffeId} (entry ID ${r.value.id})`
        : `${n} FAILED  ${id}: ${r.status.code}: ${r.status.message}`;
    });
    const ok = results.filter((r) => r.status.code === 'OK').length;
    const past = verb === 'create' ? 'Created' : 'Updated';
    ctx.print(...lines, `${past} ${ok} of ${results.length} entr${results.length === 1 ? 'y' : 'ies'}.`);
  }
  const failure = summarizeFailures(results, verb);
  if (failure) throw failure;
}

async function runBatch(ctx: CommandContext, verb: 'create' | 'update', items: (NewEntry | WispErrorData)[]): Promise<void> {
  const client = ctx.client();
  const checked = items.map((item) =>
    verb === 'update' && !isLocalFailure(item) && !item.id ? { code: 'ERR_ENTRY_INVALID' as const, message: 'entry_id is required to update an entry' } : item,
  );
  const results = await sendInBatches<NewEntry, Entry>({
    io: ctx.io,
    label: verb === 'create' ? 'creating entries' : 'updating entries',
    items: checked,
    isLocalFailure,
    send: async (chunk) => {
      const res = await client.request<{ results: WireBatchResult[] }>('POST', `${ENTRIES}/batch-${verb}`, { body: { entries: chunk } });
      return res.results.map((r) => ({ status: r.status, ...(r.entry ? { value: r.entry } : {}) }));
    },
  });
  reportBatch(ctx, verb, checked, results);
}

async function createOrUpdateOne(ctx: CommandContext, verb: 'create' | 'update', entry: NewEntry): Promise<void> {
  // the batch endpoints give the same per-entry status as a file of one entry
  const results = await sendInBatches<NewEntry, Entry>({
    io: ctx.io,
    label: verb,
    items: [entry],
    isLocalFailure,
    send: async (chunk) => {
      const res = await ctx.client().request<{ results: WireBatchResult[] }>('POST', `${ENTRIES}/batch-${verb}`, { body: { entries: chunk } });
      return res.results.map((r) => ({ status: r.status, ...(r.entry ? { value: r.entry } : {}) }));
    },
  });
  const r = results[0]!;
  if (r.status.code !== 'OK' || !r.value) throw new WispError(r.status.code as WispErrorData['code'], r.status.message);
  if (ctx.output === 'json') ctx.printJson({ results: [{ status: r.status, entry: formatSpireEntry(r.value) }] });
  else ctx.print(...formatEntryPretty(r.value));
}

/** Filters of show/count as admin API query parameters (validated locally). */
function filterQuery(o: EntryFlags): Record<string, string | string[] | undefined> {
  const selectors = parseSelectorFlags(o.selector).map(formatSelector);
  const match = parseMatchFlag('--matchSelectorsOn', o.matchSelectorsOn);
  const federatesWith = (o.federatesWith ?? []).map((td) => federatedTrustDomainFlag(td));
  const federatesWithMatch = parseMatchFlag('--matchFederatesWithOn', o.matchFederatesWithOn);
  return {
    spiffeId: o.spiffeID === undefined ? undefined : parseSpiffeIdFlag('--spiffeID', o.spiffeID),
    parentId: o.parentID === undefined ? undefined : parseSpiffeIdFlag('--parentID', o.parentID),
    selector: selectors.length ? selectors : undefined,
    match: selectors.length ? match : undefined,
    federatesWith: federatesWith.length ? federatesWith : undefined,
    federatesWithMatch: federatesWith.length ? federatesWithMatch : undefined,
    hint: o.hint,
    // SPIRE's -downstream is a switch: set, only downstream entries
    downstream: o.downstream ? 'true' : undefined,
  };
}

/** All entries matching the filters, following page tokens. */
export async function listAllEntries(ctx: CommandContext, query: Record<string, string | string[] | undefined>): Promise<Entry[]> {
  const entries: Entry[] = [];
  let pageToken: string | undefined;
  do {
    const page = await ctx.client().request<{ entries: Entry[]; nextPageToken?: string }>('GET', ENTRIES, { query: { ...query, pageSize: ENTRY_PAGE_SIZE, pageToken } });
    entries.push(...page.entries);
    pageToken = page.nextPageToken || undefined;
  } while (pageToken);
  return entries;
}

function addFilterOptions(command: Command): Command {
  return command
    .option('--spiffeID <id>', 'only entries with this SPIFFE ID')
    .option('--parentID <id>', 'only entries with this parent ID')
    .option('--selector <type:value>', 'selectors to match; repeatable', collect)
    .option('--matchSelectorsOn <mode>', `how --selector matches: ${SELECTOR_MATCH_MODES.join(', ')} (default superset)`)
    .option('--federatesWith <td>', 'only entries federating with this trust domain (name or spiffe://name); repeatable', collect)
    .option('--matchFederatesWithOn <mode>', `how --federatesWith matches: ${SELECTOR_MATCH_MODES.join(', ')} (default superset)`)
    .option('--hint <hint>', 'only entries with this hint')
    .option('--downstream', 'only entries describing a downstream issuer');
}

export function registerEntryCommands(program: Command, leaf: LeafBuilder): void {
  const entry = addGroup(program, 'entry', 'Manage registration entries', 'wisp entry show --spiffeID spiffe://example.org/web');

  const create = leaf(entry, 'create', 'Creates registration entries', [
    'wisp entry create --parentID spiffe://example.org/spire/agent/join_token/abc --spiffeID spiffe://example.org/web --selector unix:uid:1000',
    'wisp entry create --node --spiffeID spiffe://example.org/nodes/prod --selector join_token:abc',
    'wisp entry create --data entries.json    # SPIRE\'s {"entries":[...]} format; - reads stdin',
  ]);
  addEntryFieldOptions(create.command);
  create.action(async (ctx, opts) => {
    const o = opts as EntryFlags;
    if (o.data) return runBatch(ctx, 'create', await readDataFile(ctx, o.data));
    return createOrUpdateOne(ctx, 'create', entryFromFlags(o));
  });

  const update = leaf(entry, 'update', 'Updates registration entries (a full replace, as in SPIRE)', [
    'wisp entry update --entryID 6e1f... --parentID spiffe://example.org/spire/agent/x --spiffeID spiffe://example.org/web --selector unix:uid:1001',
    'wisp entry update --data entries.json    # each entry needs its entry_id',
  ]);
  addEntryFieldOptions(update.command);
  update.action(async (ctx, opts) => {
    const o = opts as EntryFlags;
    if (o.data) return runBatch(ctx, 'update', await readDataFile(ctx, o.data));
    requireFlag('--entryID', o.entryID);
    return createOrUpdateOne(ctx, 'update', entryFromFlags(o));
  });

  const del = leaf(entry, 'delete', 'Deletes registration entries', [
    'wisp entry delete --entryID 6e1f...',
    'wisp entry delete --file ids.json    # {"ids": [...]} as SPIRE, or a dump from entry show --output json',
  ]);
  del.command
    .option('--entryID <id>', 'the ID of the entry to delete; repeatable', collect)
    .option('--file <file>', 'JSON with {"ids": [...]} or {"entries": [{"entry_id": ...}]}; - reads stdin');
  del.action(async (ctx, opts) => {
    const o = opts as { entryID?: string[]; file?: string };
    let ids: string[] = o.entryID ?? [];
    if (o.file) ids = [...ids, ...(await readIdsFile(ctx, o.file))];
    if (ids.length === 0) throw new CliUsageError('--entryID or --file is required');
    const results = await sendInBatches<string, string>({
      io: ctx.io,
      label: 'deleting entries',
      items: ids,
      isLocalFailure: (i): i is WispErrorData => typeof i !== 'string',
      send: async (chunk) => {
        const res = await ctx.client().request<{ results: { status: { code: string; message: string }; id?: string }[] }>('POST', `${ENTRIES}/batch-delete`, { body: { ids: chunk } });
        return res.results.map((r, i) => ({ status: r.status, value: r.id ?? chunk[i]! }));
      },
    });
    if (ctx.output === 'json') ctx.printJson({ results: results.map((r, i) => ({ status: r.status, id: ids[i] })) });
    else ctx.print(...results.map((r, i) => (r.status.code === 'OK' ? `Deleted entry with ID: ${ids[i]}` : `Failed to delete entry with ID ${ids[i]}: ${r.status.code}: ${r.status.message}`)));
    const failure = summarizeFailures(results, 'delete');
    if (failure) throw ids.length === 1 ? new WispError(failure.code, results[0]!.status.message) : failure;
  });

  const show = leaf(entry, 'show', 'Displays configured registration entries', [
    'wisp entry show --selector unix:uid:1000 --matchSelectorsOn any',
    'wisp entry show --output json > entries.json    # re-imports with: wisp entry create --data entries.json',
  ]);
  addFilterOptions(show.command).option('--entryID <id>', 'the ID of one entry to show');
  show.action(async (ctx, opts) => {
    const o = opts as EntryFlags;
    let entries: Entry[];
    if (o.entryID) {
      const res = await ctx.client().request<{ entry?: Entry } & Partial<Entry>>('GET', `${ENTRIES}/${encodeURIComponent(o.entryID)}`);
      entries = [res.entry ?? (res as Entry)];
    } else {
      entries = await listAllEntries(ctx, filterQuery(o));
    }
    if (ctx.output === 'json') return ctx.printJson(formatSpireEntryFile(entries));
    ctx.print(`Found ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`, ...entries.flatMap(formatEntryPretty));
  });

  const count = leaf(entry, 'count', 'Counts registration entries', ['wisp entry count --parentID spiffe://example.org/spire/agent/join_token/abc']);
  addFilterOptions(count.command);
  count.action(async (ctx, opts) => {
    const res = await ctx.client().request<{ count: number }>('GET', `${ENTRIES}/count`, { query: filterQuery(opts as EntryFlags) });
    if (ctx.output === 'json') ctx.printJson({ count: res.count });
    else ctx.print(`${res.count} registration entr${res.count === 1 ? 'y' : 'ies'}`);
  });

  const revoke = leaf(entry, 'revoke', "Revokes every X509-SVID issued until now for the entry's SPIFFE ID (docs/revocation.md)", ['wisp entry revoke --entryID 6e1f...']);
  revoke.command.option('--entryID <id>', 'the ID of the entry').option('--reason <text>', 'why (kept with the revocation)');
  revoke.action(async (ctx, opts) => {
    const o = opts as { entryID?: string; reason?: string };
    const entryId = requireFlag('--entryID', o.entryID);
    const res = await ctx.client().request<{ revocations: unknown[] }>('POST', '/admin/v1/revocations', { body: { entryId, ...(o.reason !== undefined ? { reason: o.reason } : {}) } });
    if (ctx.output === 'json') return ctx.printJson(res);
    ctx.print(`Revoked: ${res.revocations.length} record(s)`);
  });
}

async function readIdsFile(ctx: CommandContext, path: string): Promise<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(await ctx.readInput(path));
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw new CliUsageError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const doc = (json ?? {}) as { ids?: unknown; entries?: unknown };
  if (Array.isArray(doc.ids) && doc.ids.every((i) => typeof i === 'string')) return doc.ids as string[];
  if (Array.isArray(doc.entries)) {
    return doc.entries.map((e, i) => {
      const id = (e as { entry_id?: unknown; id?: unknown })?.entry_id ?? (e as { id?: unknown })?.id;
      if (typeof id !== 'string' || id === '') throw new CliUsageError(`${path}: entries[${i}] has no entry_id`);
      return id;
    });
  }
  throw new CliUsageError(`${path}: expected {"ids": [...]} or {"entries": [{"entry_id": ...}]}`);
}
