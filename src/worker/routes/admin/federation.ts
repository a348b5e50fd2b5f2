/**
 * Admin API for federation relationships (SPIRE's trustdomain API) and foreign bundles (SPIRE's bundle API
 * for federated bundles):
 * - `/federation`: POST create, GET list, GET/PUT/DELETE `/:trustDomain`, POST `/:trustDomain/refresh`
 *   (https_web: fetched now by the Worker; https_spiffe: the body `{bundle}` or `{error}` is what Node fetched
 *   over SPIFFE-authenticated TLS, stored and recorded like a refresh);
 * - `/bundles`: GET list, GET/PUT/DELETE `/:trustDomain` (PUT body `{bundle}`: SPIFFE JSON or PEM text).
 * Deleting a relationship deletes its foreign bundle too, which ends that trust at the next agent sync.
 * @module
 */
import { Hono, type Context } from 'hono';
import { WispError } from '../../../shared/errors.js';
import { parseForeignBundle, planBundleUpdate, type ForeignBundle } from '../../../shared/federation/foreign-bundle.js';
import type { FederationStore } from '../../../shared/federation/federation-store.js';
import { parseRelationshipInput } from '../../../shared/federation/relationship.js';
import { parseTrustDomain, type TrustDomain } from '../../../shared/spiffe/id.js';
import { MAX_BUNDLE_BYTES } from '../../../shared/spiffe/bundle.js';
import type { AppDeps } from '../../deps.js';
import { noteAudit } from '../../middleware/audit.js';
import { noteAgents } from '../../notifier/notices.js';
import { refreshRelationship } from '../../federation/refresh.js';
import { parseSubmission, submitRefresh } from '../../federation/submit.js';
import { asObject, readJsonBody } from '../../http-json.js';
import { nowSeconds, onlyFields } from './params.js';
import { countedSubmit, waitUntilOf } from '../../telemetry.js';

/** Body limit of requests carrying a bundle. */
const BUNDLE_BODY_MAX_BYTES = MAX_BUNDLE_BYTES + 64 * 1024;

const noRelationship = (td: string) => new WispError('ERR_FEDERATION_NOT_FOUND', `no federation relationship with "${td}"`);
const noBundle = (td: string) => new WispError('ERR_BUNDLE_NOT_FOUND', `no bundle of "${td}"`);

/** The trust domain of the path; a malformed one cannot exist, so it is "not found". */
function pathTrustDomain(c: Context, notFound: (td: string) => WispError): TrustDomain {
  const raw = c.req.param('trustDomain') ?? '';
  try {
    return parseTrustDomain(raw);
  } catch {
    throw notFound(raw.slice(0, 255));
  }
}

/** Parses a bundle for `td` and checks it may replace the stored one. */
async function foreignBundleOf(input: unknown, td: TrustDomain, store: FederationStore, now: number): Promise<ForeignBundle> {
  const incoming = await parseForeignBundle(input, td);
  planBundleUpdate(await store.getBundle(td), incoming);
  return { trustDomain: td, bundle: incoming.bundle, sequence: incoming.parsed.sequence, refreshHintSeconds: incoming.parsed.refreshHintSeconds, updatedAt: now };
}

function refused(td: string): WispError {
  return new WispError('ERR_BUNDLE_SEQUENCE_BACKWARDS', `bundle of "${td}": a bundle with a higher spiffe_sequence is stored`);
}

export function federationRoutes(deps: AppDeps, store: FederationStore): Hono {
  const app = new Hono();
  const own = deps.config.trustDomain;

  async function write(c: Context, pathTd: TrustDomain | undefined) {
    const input = parseRelationshipInput(await readJsonBody(c, BUNDLE_BODY_MAX_BYTES), own, pathTd);
    noteAudit(c, { objectIds: [input.trustDomain] });
    const now = nowSeconds(deps);
    const bundle = input.trustDomainBundle === undefined ? undefined : await foreignBundleOf(input.trustDomainBundle, input.trustDomain, store, now);
    if (input.bundleEndpointProfile === 'https_spiffe' && !bundle && !(await store.getBundle(input.trustDomain))) {
      throw new WispError('ERR_BAD_REQUEST', 'the https_spiffe profile needs a trustDomainBundle to authenticate the endpoint');
    }
    const { trustDomainBundle: _b, ...rel } = input;
    noteAgents(c, { all: true });
    return pathTd ? store.updateRelationship(rel, bundle, now) : store.createRelationship(rel, bundle, now);
  }

  app.post('/', async (c) => c.json({ relationship: await write(c, undefined) }, 201));
  app.get('/', async (c) => c.json({ relationships: await store.listRelationships() }));

  app.get('/:trustDomain', async (c) => {
    const td = pathTrustDomain(c, noRelationship);
    const relationship = await store.getRelationship(td);
    if (!relationship) throw noRelationship(td);
    const bundle = await store.getBundle(td);
    return c.json({ relationship, ...(bundle ? { bundle } : {}) });
  });

  app.put('/:trustDomain', async (c) => c.json({ relationship: await write(c, pathTrustDomain(c, noRelationship)) }));

  app.delete('/:trustDomain', async (c) => {
    const td = pathTrustDomain(c, noRelationship);
    if (!(await store.deleteRelationship(td))) throw noRelationship(td);
    noteAgents(c, { all: true });
    return c.body(null, 204);
  });

  app.post('/:trustDomain/refresh', async (c) => {
    const td = pathTrustDomain(c, noRelationship);
    const relationship = await store.getRelationship(td);
    if (!relationship) throw noRelationship(td);
    const now = nowSeconds(deps);
    noteAgents(c, { all: true });
    if (relationship.bundleEndpointProfile === 'https_web') {
      const outcome = await refreshRelationship({ store, fetch: deps.fetch, now: () => now }, relationship);
      deps.telemetry.bundleRefresh(td, outcome.status, waitUntilOf(c));
      if (outcome.status === 'failed') throw new WispError('ERR_UNAVAILABLE', `refresh of "${td}" failed: ${outcome.error}`);
      return c.json({ status: outcome.status, relationship: await store.getRelationship(td), bundle: await store.getBundle(td) });
    }
    // https_spiffe: the Worker cannot verify the endpoint; Node fetched it and submits the result here
    const contentType = c.req.header('content-type');
    if (!contentType) {
      throw new WispError('ERR_BAD_REQUEST', 'an https_spiffe endpoint cannot be verified by the Worker: run `wisp federation refresh` where Node runs');
    }
    const submission = parseSubmission(asObject(await readJsonBody(c, BUNDLE_BODY_MAX_BYTES)));
    return c.json(await countedSubmit(deps.telemetry, td, submitRefresh(store, relationship, submission, now), waitUntilOf(c)));
  });

  return app;
}

export function foreignBundleRoutes(deps: AppDeps, store: FederationStore): Hono {
  const app = new Hono();

  app.get('/', async (c) => c.json({ bundles: await store.listBundles() }));

  app.get('/:trustDomain', async (c) => {
    const td = pathTrustDomain(c, noBundle);
    const bundle = await store.getBundle(td);
    if (!bundle) throw noBundle(td);
    return c.json({ bundle });
  });

  app.put('/:trustDomain', async (c) => {
    const td = pathTrustDomain(c, noBundle);
    if (td === deps.config.trustDomain) throw new WispError('ERR_BAD_REQUEST', "the local trust domain's bundle is managed by its CA");
    const body = asObject(await readJsonBody(c, BUNDLE_BODY_MAX_BYTES));
    onlyFields(body, ['bundle']);
    if (body.bundle === undefined) throw new WispError('ERR_BAD_REQUEST', 'bundle is required (SPIFFE bundle JSON, or PEM certificates as a string)');
    const bundle = await foreignBundleOf(body.bundle, td, store, nowSeconds(deps));
    if (!(await store.putBundle(bundle))) throw refused(td);
    noteAgents(c, { all: true });
    return c.json({ bundle: await store.getBundle(td) });
  });

  app.delete('/:trustDomain', async (c) => {
    const td = pathTrustDomain(c, noBundle);
    if (!(await store.deleteBundle(td))) throw noBundle(td);
    noteAgents(c, { all: true });
    return c.body(null, 204);
  });

  return app;
}
