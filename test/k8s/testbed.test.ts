import { describe, expect, it } from 'vitest';
import { kubectl, testbed } from '../helpers/node/k8s-testbed.js';

const tb = testbed();

describe.skipIf(!tb.ready)(`Kubernetes testbed${tb.ready ? '' : ` (skipped: ${tb.skipReason})`}`, () => {
  it('serves the API and issues service-account tokens for the spire-server audience', () => {
    if (!tb.ready) return;
    const token = kubectl(tb.env, ['create', 'token', 'default', '-n', 'default', '--audience', 'spire-server']).trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { aud: string[]; iss: string };
    expect(claims.aud).toEqual(['spire-server']);
    expect(claims.iss).toBe(tb.env.TESTBED_SA_ISSUER);
  });

  it.skipIf(tb.ready && !tb.node)(`runs a node${tb.ready && tb.nodeSkipReason ? ` (skipped: ${tb.nodeSkipReason})` : ''}`, () => {
    if (!tb.ready) return;
    const nodes = JSON.parse(kubectl(tb.env, ['get', 'nodes', '-o', 'json'])) as { items: { metadata: { name: string } }[] };
    expect(nodes.items.map((n) => n.metadata.name)).toContain(tb.env.TESTBED_NODE_NAME);
  });
});
