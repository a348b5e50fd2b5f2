/**
 * `wisp wit validate`: a relying party's check of a presented WIT-SVID (WIT-SVID.md) against a SPIFFE bundle
 * file, offline: the signature by one of the bundle's `wit-svid` keys, `typ`, `exp`/`nbf`, `sub` in the
 * bundle's trust domain, `cnf.jwk`; with `--proof-file` also the proof of possession §4 requires (a WIMSE
 * Workload Proof Token for `--audience`). The rules are shared/spiffe/wit-svid.ts's.
 * @module
 */
import type { Command } from 'commander';
import { decodeJwt } from 'jose';
import { WispError } from '../shared/errors.js';
import { parseBundleJson } from '../shared/spiffe/bundle.js';
import { parseTrustDomain, trustDomainOf, parseSpiffeId } from '../shared/spiffe/id.js';
import { cnfThumbprint, validateWitSvid, verifyWorkloadProofToken } from '../shared/spiffe/wit-svid.js';
import { addGroup, type LeafBuilder } from './command.js';
import { parseIntegerFlag, requireFlag } from './flags.js';
import { CliUsageError } from './context.js';

/** Most clock skew accepted (WIT-SVID.md §3.4: "at most a couple of minutes"). */
const MAX_SKEW_SECONDS = 120;

export function registerWitCommands(program: Command, leaf: LeafBuilder): void {
  const wit = addGroup(program, 'wit', 'Validate WIT-SVIDs', 'wisp wit validate --tokenFile wit.jwt --bundle bundle.json');
  const validate = leaf(wit, 'validate', 'Validates a WIT-SVID (and its proof of possession) against a SPIFFE bundle', [
    'wisp wit validate --tokenFile wit.jwt --bundle bundle.json',
    'wisp wit validate --tokenFile wit.jwt --bundle bundle.json --proofFile wpt.jwt --audience https://api.example.org',
  ]);
  validate.command
    .option('--tokenFile <file>', 'the WIT-SVID (compact JWS), or - for stdin')
    .option('--bundle <file>', "SPIFFE bundle (JSON) of the token's trust domain, e.g. from GET /bundle")
    .option('--trustDomain <td>', "the bundle's trust domain (default: the token's sub)")
    .option('--proofFile <file>', 'a Workload Proof Token (wpt+jwt) signed with the cnf key')
    .option('--audience <aud>', 'the recipient the proof must be for (with --proofFile)')
    .option('--clockSkew <seconds>', `leeway for exp/nbf, at most ${MAX_SKEW_SECONDS}`, '0');
  validate.action(async (ctx, opts) => {
    const token = (await ctx.readInput(requireFlag('--tokenFile', opts['tokenFile'] as string | undefined))).trim();
    const bundleText = await ctx.readInput(requireFlag('--bundle', opts['bundle'] as string | undefined));
    const proofFile = opts['proofFile'] as string | undefined;
    const audience = opts['audience'] as string | undefined;
    if (proofFile && !audience) throw new CliUsageError('--proofFile needs --audience (the recipient the proof is for)');
    if (audience && !proofFile) throw new CliUsageError('--audience checks a proof: pass --proofFile');
    const skew = parseIntegerFlag('--clockSkew', opts['clockSkew'] as string) ?? 0;
    if (skew < 0 || skew > MAX_SKEW_SECONDS) throw new CliUsageError(`--clockSkew must be between 0 and ${MAX_SKEW_SECONDS}`);
    const trustDomain = opts['trustDomain'] ? parseTrustDomain(opts['trustDomain'] as string) : subjectTrustDomain(token);
    const bundle = await parseBundleJson(bundleText, trustDomain);
    if (!bundle.witAuthorities?.length) throw new WispError('ERR_JWT_INVALID', `the bundle of ${trustDomain} has no wit-svid keys: its trust domain does not issue WIT-SVIDs`);
    const now = Date.now();
    const validated = await validateWitSvid(token, bundle.witAuthorities, { now, trustDomain, clockToleranceSeconds: skew });
    if (!validated.ok) throw new WispError('ERR_JWT_INVALID', `WIT-SVID is not valid: ${validated.error.message}`);
    let proof: { aud: string; jti: unknown } | undefined;
    if (proofFile) {
      const checked = await verifyWorkloadProofToken((await ctx.readInput(proofFile)).trim(), token, validated.value, { audience: audience!, now, clockToleranceSeconds: skew });
      if (!checked.ok) throw new WispError('ERR_JWT_INVALID', `proof of possession is not valid: ${checked.error.message}`);
      proof = { aud: audience!, jti: checked.value.jti };
    }
    const result = {
      spiffeId: validated.value.spiffeId,
      expiresAt: new Date(validated.value.expiresAt).toISOString(),
      cnfThumbprint: await cnfThumbprint(validated.value.cnfJwk),
      proofOfPossession: proof ? 'verified' : 'not checked',
      ...(proof ? { proof } : {}),
    };
    if (ctx.output === 'json') return ctx.printJson(result);
    ctx.print(`WIT-SVID valid: ${result.spiffeId}`, `  expires:   ${result.expiresAt}`, `  cnf (jkt): ${result.cnfThumbprint}`, proof ? `  proof of possession: verified for ${proof.aud}` : '  proof of possession: not checked (WIT-SVID.md §4: do not accept the WIT-SVID without one)');
  });
}

/** The trust domain of the token's `sub`, read before validation only to pick the bundle's name. */
function subjectTrustDomain(token: string): string {
  try {
    return trustDomainOf(parseSpiffeId(decodeJwt(token).sub));
  } catch {
    throw new WispError('ERR_JWT_INVALID', 'WIT-SVID is not valid: its sub is not a SPIFFE ID (or pass --trustDomain)');
  }
}
