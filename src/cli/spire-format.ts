/**
 * SPIRE's registration-entry file format, so entries migrate from SPIRE unchanged.
 *
 * `spire-server entry create|update -data FILE` reads `{"entries":[...]}` with Go's encoding/json into
 * `spire.common.RegistrationEntries` (cmd/spire-server/cli/entry/util.go `parseEntryJSON`). Field names are
 * therefore the proto field names of `common.RegistrationEntry` (proto/spire/common/common.proto):
 * `spiffe_id` and `parent_id` as strings, `selectors` as `{type, value}`, `x509_svid_ttl`, `jwt_svid_ttl`,
 * `federates_with` (trust domain IDs), `entry_id`, `admin`, `downstream`, `entryExpiry` (camelCase in the
 * proto), `dns_names`, `revision_number`, `store_svid`, `hint`; zero values omitted (omitempty). SPIRE has no
 * custom JWT-SVID claims; Wisp's are `jwt_svid_claims`, an object (src/shared/registry/jwt-svid-claims.ts).
 *
 * `wisp entry show --output json` writes exactly that format, so a dump re-imports unchanged. The reader
 * also accepts what SPIRE's own `entry show -output json` prints (protojson of `spire.api.types.Entry`:
 * `id`, IDs as `{trust_domain, path}`, `expires_at`, int64 as strings) and the deprecated `ttl` of older
 * files (it sets both TTLs, as SPIRE did before x509_svid_ttl/jwt_svid_ttl existed).
 *
 * Pure: no I/O, so it is unit-tested without a server.
 * @module
 */
import { WispError, type WispErrorData } from '../shared/errors.js';
import type { Entry, NewEntry } from '../shared/registry/entry.js';
import { jwtSvidClaimsProblem, type JwtSvidExtraClaims } from '../shared/registry/jwt-svid-claims.js';
import { parseSelectors, type Selector } from '../shared/registry/selectors.js';
import { parseSpiffeId, parseTrustDomain, type SpiffeId, type TrustDomain } from '../shared/spiffe/id.js';
import { err, ok, type Result } from '../shared/result.js';

/** One entry of SPIRE's `-data` file (`spire.common.RegistrationEntry`, Go JSON names). */
export interface SpireEntry {
  entry_id?: string;
  spiffe_id: string;
  parent_id: string;
  selectors: Selector[];
  x509_svid_ttl?: number;
  jwt_svid_ttl?: number;
  federates_with?: string[];
  admin?: boolean;
  downstream?: boolean;
  entryExpiry?: number;
  dns_names?: string[];
  revision_number?: number;
  hint?: string;
  /** Wisp's: extra JWT-SVID claims */
  jwt_svid_claims?: JwtSvidExtraClaims;
}

/** SPIRE's `-data` document. */
export interface SpireEntryFile {
  entries: SpireEntry[];
}

/** A file entry parsed into what the admin API takes, or why it cannot be. */
export type ParsedSpireEntry = Result<NewEntry & { revisionNumber?: number }, WispErrorData>;

/** Every key the reader understands, with the alias it stands for. */
const KEY_ALIASES: Record<string, string> = {
  entry_id: 'entry_id',
  id: 'entry_id',
  spiffe_id: 'spiffe_id',
  parent_id: 'parent_id',
  selectors: 'selectors',
  x509_svid_ttl: 'x509_svid_ttl',
  jwt_svid_ttl: 'jwt_svid_ttl',
  ttl: 'ttl',
  federates_with: 'federates_with',
  admin: 'admin',
  downstream: 'downstream',
  entryExpiry: 'entryExpiry',
  expires_at: 'entryExpiry',
  dns_names: 'dns_names',
  revision_number: 'revision_number',
  store_svid: 'store_svid',
  hint: 'hint',
  jwt_svid_claims: 'jwt_svid_claims',
  created_at: 'created_at',
};

const INT32_MAX = 2 ** 31 - 1;

function invalid(message: string): WispError {
  return new WispError('ERR_ENTRY_INVALID', message);
}

/** A SPIFFE ID as a string, or protojson's `{trust_domain, path}`. */
function readId(value: unknown, field: string): SpiffeId {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const { trust_domain: td, path } = value as Record<string, unknown>;
    if (typeof td !== 'string' || (path !== undefined && typeof path !== 'string')) {
      throw new WispError('ERR_SPIFFE_ID_INVALID', `${field} must be a string or {trust_domain, path}`);
    }
    return withField(field, () => parseSpiffeId(`spiffe://${td}${path ?? ''}`));
  }
  if (value === undefined || value === '') throw new WispError('ERR_SPIFFE_ID_INVALID', `${field} is required`);
  return withField(field, () => parseSpiffeId(value));
}

function withField<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof WispError) throw new WispError(e.code, `${field}: ${e.message}`);
    throw e;
  }
}

/** A whole number: JSON number, or protojson's decimal string for int64. */
function readInt(value: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw invalid(`${field} must be a whole number`);
  if (n < 0) throw invalid(`${field} must not be negative`);
  if (n > max) throw invalid(`${field} must be at most ${max}`);
  return n;
}

function readBool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid(`${field} must be true or false`);
  return value;
}

function readString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  return value;
}

function readStrings(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw invalid(`${field} must be an array of strings`);
  return value as string[];
}

/** `spiffe://example.org` (common.RegistrationEntry) or `example.org` (types.Entry) → `example.org`. */
export function parseFederatedTrustDomain(value: string): TrustDomain {
  return parseTrustDomain(value.startsWith('spiffe://') ? value.slice('spiffe://'.length) : value);
}

/**
 * Parses one entry of a SPIRE `-data` file. Throws `WispError` naming the field.
 * @example parseSpireEntry({ spiffe_id: 'spiffe://example.org/web', parent_id: 'spiffe://example.org/spire/agent/x', selectors: [{ type: 'unix', value: 'uid:1000' }] })
 */
export function parseSpireEntry(input: unknown): NewEntry & { revisionNumber?: number } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('entry must be a JSON object');
  const fields = new Map<string, unknown>();
  for (const [key, value] of Object.entries(input)) {
    const canonical = KEY_ALIASES[key];
    if (!canonical) throw invalid(`unknown field "${key}"`);
    if (value === null) continue;
    if (fields.has(canonical)) throw invalid(`field "${key}" given twice (as "${canonical}" and an alias)`);
    fields.set(canonical, value);
  }
  const get = (k: string) => fields.get(k);
  if (get('store_svid') !== undefined && readBool(get('store_svid'), 'store_svid')) {
    throw invalid('store_svid is not supported by Wisp (there is no SVIDStore)');
  }
  const ttl = get('ttl') === undefined ? 0 : readInt(get('ttl'), 'ttl', INT32_MAX);
  const entry: NewEntry & { revisionNumber?: number } = {
    spiffeId: readId(get('spiffe_id'), 'spiffe_id'),
    parentId: readId(get('parent_id'), 'parent_id'),
    selectors: withField('selectors', () => parseSelectors(get('selectors') ?? [])),
    x509SvidTtl: get('x509_svid_ttl') === undefined ? ttl : readInt(get('x509_svid_ttl'), 'x509_svid_ttl', INT32_MAX),
    jwtSvidTtl: get('jwt_svid_ttl') === undefined ? ttl : readInt(get('jwt_svid_ttl'), 'jwt_svid_ttl', INT32_MAX),
    federatesWith: readStrings(get('federates_with') ?? [], 'federates_with').map((td) =>
      withField('federates_with', () => parseFederatedTrustDomain(td)),
    ),
    admin: get('admin') === undefined ? false : readBool(get('admin'), 'admin'),
    downstream: get('downstream') === undefined ? false : readBool(get('downstream'), 'downstream'),
    expiresAt: get('entryExpiry') === undefined ? 0 : readInt(get('entryExpiry'), 'entryExpiry'),
    dnsNames: readStrings(get('dns_names') ?? [], 'dns_names'),
    hint: get('hint') === undefined ? '' : readString(get('hint'), 'hint'),
  };
  const id = get('entry_id');
  if (id !== undefined && id !== '') {
    entry.id = readString(id, 'entry_id');
  }
  const claims = get('jwt_svid_claims');
  if (claims !== undefined) {
    const problem = jwtSvidClaimsProblem(claims);
    if (problem) throw invalid(problem.replace(/^jwtSvidClaims/, 'jwt_svid_claims'));
    if (Object.keys(claims as object).length > 0) entry.jwtSvidClaims = claims as JwtSvidExtraClaims;
  }
  if (get('revision_number') !== undefined) entry.revisionNumber = readInt(get('revision_number'), 'revision_number');
  return entry;
}

/**
 * Parses a whole `-data` document. The document's shape must be right (else it throws: nothing is sent);
 * each entry is parsed on its own, so one bad entry is reported and the others still go through.
 */
export function parseSpireEntryFile(input: unknown): ParsedSpireEntry[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new WispError('ERR_BAD_REQUEST', 'entry data must be a JSON object {"entries": [...]} (SPIRE\'s entry create -data format)');
  }
  const entries = (input as Record<string, unknown>)['entries'];
  if (!Array.isArray(entries)) throw new WispError('ERR_BAD_REQUEST', 'entry data must have an "entries" array (SPIRE\'s entry create -data format)');
  return entries.map((e): ParsedSpireEntry => {
    try {
      return ok(parseSpireEntry(e));
    } catch (error) {
      if (error instanceof WispError) return err(error.toData());
      throw error;
    }
  });
}

/** Parses the text of a `-data` file (JSON errors become one-line `WispError`s). */
export function parseSpireEntryText(text: string, source: string): ParsedSpireEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WispError('ERR_BAD_REQUEST', `${source}: not valid JSON (${(e as Error).message})`);
  }
  return parseSpireEntryFile(json);
}

/** An entry from the admin API in SPIRE's `-data` format; zero values are omitted as Go's omitempty does. */
export function formatSpireEntry(e: Entry): SpireEntry {
  const out: SpireEntry = { entry_id: e.id, spiffe_id: e.spiffeId, parent_id: e.parentId, selectors: e.selectors.map(({ type, value }) => ({ type, value })) };
  if (e.x509SvidTtl) out.x509_svid_ttl = e.x509SvidTtl;
  if (e.jwtSvidTtl) out.jwt_svid_ttl = e.jwtSvidTtl;
  if (e.federatesWith.length) out.federates_with = e.federatesWith.map((td) => `spiffe://${td}`);
  if (e.admin) out.admin = true;
  if (e.downstream) out.downstream = true;
  if (e.expiresAt) out.entryExpiry = e.expiresAt;
  if (e.dnsNames.length) out.dns_names = [...e.dnsNames];
  if (e.revisionNumber) out.revision_number = e.revisionNumber;
  if (e.hint) out.hint = e.hint;
  if (e.jwtSvidClaims) out.jwt_svid_claims = e.jwtSvidClaims;
  return out;
}

/** Entries in SPIRE's `-data` document format: what `wisp entry show --output json` prints. */
export function formatSpireEntryFile(entries: readonly Entry[]): SpireEntryFile {
  return { entries: entries.map(formatSpireEntry) };
}
