/**
 * Admin API for the trust domain's own signing keys (SPIRE's LocalAuthority API): `GET /localauthority/{x509|jwt}`
 * shows the active, prepared and old authority; `POST .../prepare`, `.../activate`, `.../taint` and
 * `.../revoke` (the last three with `{ "authorityId": "..." }`) change them. The rules live in
 * shared/ca/local-authority.ts and are applied by the CA Durable Object (ca/local-authority.ts).
 * @module
 */
import { Hono, type Context } from 'hono';
import type { KeyKind } from '../../../shared/ca/key-slot.js';
import type { AuthorityOp } from '../../../shared/ca/local-authority.js';
import { WispError } from '../../../shared/errors.js';
import { unwrap } from '../../../shared/result.js';
import type { AppDeps } from '../../deps.js';
import { asObject, parseJsonBytes, readBodyBytes } from '../../http-json.js';
import { noteAudit } from '../../middleware/audit.js';
import { forgetPublishedKeys } from '../../middleware/agent-auth.js';
import { noteAgents, noteKeysChangedAgain } from '../../notifier/notices.js';
import { waitUntilOf } from '../../telemetry.js';
import { onlyFields } from './params.js';

/** The request bodies are one short field. */
const MAX_BODY_BYTES = 1024;
const CHANGES = ['prepare', 'activate', 'taint', 'revoke'] as const;

function kindOf(c: Context): KeyKind {
  const kind = c.req.param('kind');
  if (kind !== 'x509' && kind !== 'jwt') throw new WispError('ERR_NOT_FOUND', 'no such endpoint: the authority kind is x509 or jwt');
  return kind;
}

export function localAuthorityRoutes(deps: AppDeps): Hono {
  const app = new Hono();

  app.get('/:kind', async (c) => {
    const result = unwrap(await deps.ca().manageAuthority({ kind: kindOf(c), op: 'show' }));
    return c.json(result.op === 'show' ? result.states : {});
  });

  for (const op of CHANGES) {
    app.post(`/:kind/${op}`, async (c) => {
      const kind = kindOf(c);
      let authorityId: unknown;
      const bytes = await readBodyBytes(c.req.raw, MAX_BODY_BYTES);
      // prepare takes no input: an empty body is fine for it
      if (op !== 'prepare' || bytes.length > 0) {
        const body = asObject(parseJsonBytes(c.req.header('content-type') ?? null, bytes));
        onlyFields(body, op === 'prepare' ? [] : ['authorityId']);
        authorityId = body.authorityId;
      }
      if (op !== 'prepare' && (authorityId === undefined || authorityId === '')) throw new WispError('ERR_BAD_REQUEST', 'no authority ID provided');
      if (authorityId !== undefined && typeof authorityId !== 'string') throw new WispError('ERR_BAD_REQUEST', 'authorityId must be a string');
      if (typeof authorityId === 'string') noteAudit(c, { objectIds: [authorityId.slice(0, 128)] });
      const result = unwrap(await deps.ca().manageAuthority({ kind, op: op satisfies AuthorityOp, ...(authorityId !== undefined ? { authorityId } : {}) }));
      if (op === 'prepare' && result.op !== 'show') noteAudit(c, { objectIds: [result.authority.authorityId] });
      forgetPublishedKeys(deps.caches.agentAuthorities); // this isolate's next sync sees the change at once
      noteAgents(c, { all: true }); // the bundle or the tainted list changed
      noteKeysChangedAgain(deps.notifier, waitUntilOf(c)); // once other isolates' caches have it too
      return c.json(result.op === 'show' ? {} : { [RESULT_FIELD[op]]: result.authority });
    });
  }
  return app;
}

/** SPIRE's response field names (PrepareX509AuthorityResponse.prepared_authority, ...). */
const RESULT_FIELD: Record<(typeof CHANGES)[number], string> = {
  prepare: 'preparedAuthority',
  activate: 'activatedAuthority',
  taint: 'taintedAuthority',
  revoke: 'revokedAuthority',
};
