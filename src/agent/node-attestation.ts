/**
 * The agent's own identity: attest once (join token on first start), reuse the stored key and SVID on
 * restart while the SVID is valid, renew at half-life (new key each time, as SPIRE agents do), and attest
 * again only when it must: the issuer no longer knows the agent (401) or the SVID expired while offline.
 * A join token is single-use, so a forced re-attestation without a fresh token is fatal with a clear
 * message; the process exits and the operator provides a new token (systemd-style restart policy).
 * @module
 */
import type { AttestResponse, SpiffeBundleJson, X509SvidWire } from '../shared/agent-api.js';
import type { Clock } from '../shared/clock.js';
import { fromBase64, toBase64 } from '../shared/encoding/base64.js';
import { WispError } from '../shared/errors.js';
import type { NodeAttestor } from './attestor/node-attestor.js';
import { openDataDir, type DataDir, type StoredAgentState } from './data-dir.js';
import type { AgentCredentials, IssuerClient } from './issuer-client.js';
import {
  createCsr,
  exportPkcs8,
  generateKeyPair,
  importPkcs8,
  matchingCertificateInfo,
  toSigningCryptoKey,
  type CryptoKey,
  type KeyObject,
} from './keys.js';
import { LOG_FIELDS, silentLogger, type Logger } from './log.js';
import { shouldRotate } from './rotation-policy.js';
import { countedCall } from './telemetry/calls.js';
import type { WorkTelemetry } from './telemetry/metrics.js';

/** The agent's current X509-SVID and its key. */
export interface AgentSvid extends AgentCredentials {
  privateKey: CryptoKey;
  certChain: Uint8Array[];
  spiffeId: string;
  /** ms since the epoch */
  notBefore: number;
  notAfter: number;
}

export interface AgentIdentityDeps {
  client: Pick<IssuerClient, 'attest' | 'attestChallenge' | 'renew'>;
  dataDir: DataDir;
  /** undefined when the config enables none (then the agent can only run from a stored, valid SVID) */
  attestor: NodeAttestor | undefined;
  clock: Clock;
  log: Logger;
  /** counts attestations and rotations; absent: metrics off */
  telemetry?: Pick<WorkTelemetry, 'now' | 'callDone'>;
}

export interface AgentIdentity {
  /** the SVID to sign requests with; undefined before `start()` */
  current(): AgentSvid | undefined;
  /**
   * Loads the stored identity if it is still valid, or attests. Returns the bundle the agent starts
   * with (from the attestation, or the stored one).
   */
  start(): Promise<{ svid: AgentSvid; bundle: SpiffeBundleJson | undefined }>;
  /**
   * What the last `start()` found in the data dir: the stored agent SVID's SPIFFE ID, expired or not (the
   * owner of the SVID cache file), and the stored bundle; undefined before it, or with no usable stored SVID.
   */
  stored(): { spiffeId: string; bundle: SpiffeBundleJson | undefined } | undefined;
  /** renews at half-life, or now when `force` (a tainted signer); re-attests instead if the SVID has expired */
  renewIfDue(force?: boolean): Promise<boolean>;
  /** attests again (the issuer rejected the SVID); fatal WispError if no attestor can */
  reattest(reason: string): Promise<SpiffeBundleJson>;
}

/** Attestation failures no retry can fix. */
const FATAL_ATTESTATION_CODES = new Set(['ERR_JOIN_TOKEN_INVALID', 'ERR_ATTESTATION_FAILED', 'ERR_AGENT_BANNED', 'ERR_AGENT_ALREADY_ATTESTED', 'ERR_BAD_REQUEST', 'ERR_CSR_INVALID']);

/** What the data dir holds of the agent's identity: the SVID when key and leaf load and match. */
interface StoredIdentity {
  svid?: AgentSvid;
  bundle?: SpiffeBundleJson;
}

async function loadStoredIdentity(dataDir: DataDir, log: Pick<Logger, 'warn'>): Promise<StoredIdentity> {
  let stored: StoredAgentState;
  try {
    stored = await dataDir.load();
  } catch (e) {
    // a PEM block that is not base64 (a torn or hand-edited file): as unusable as a key that does not match
    if (!(e instanceof WispError)) throw e;
    log.warn(`stored agent identity is unreadable (${e.message}); attesting again`);
    return {};
  }
  const leaf = stored.agentSvidChain?.[0];
  if (!stored.agentKey || !stored.agentSvidChain || !leaf) return stored.bundle ? { bundle: stored.bundle } : {};
  let privateKey: KeyObject | undefined;
  try {
    privateKey = importPkcs8(stored.agentKey);
  } catch {
    privateKey = undefined;
  }
  const info = privateKey ? matchingCertificateInfo(leaf, privateKey) : undefined;
  if (!privateKey || !info) {
    log.warn('stored agent key does not match the stored SVID (left by an older agent\'s interrupted renewal?); attesting again');
    return stored.bundle ? { bundle: stored.bundle } : {};
  }
  const loaded: AgentSvid = { privateKey: await toSigningCryptoKey(privateKey), certChain: stored.agentSvidChain, spiffeId: info.spiffeId ?? '', notBefore: info.notBefore, notAfter: info.notAfter };
  return { svid: loaded, ...(stored.bundle ? { bundle: stored.bundle } : {}) };
}

/** The rule of a restart: the stored SVID is reused while it is valid at `now`, else the agent attests. */
function reusableSvid(stored: StoredIdentity, now: number): AgentSvid | undefined {
  return stored.svid && now < stored.svid.notAfter ? stored.svid : undefined;
}

/**
 * Whether an agent started now over the data dir at `path` would run from its stored identity, without
 * attesting (the same rule as `start()`). `npm start` (scripts/start-local.ts) mints a join token when not.
 */
export async function hasReusableAgentSvid(path: string, now: number): Promise<boolean> {
  return reusableSvid(await loadStoredIdentity(await openDataDir(path), silentLogger()), now) !== undefined;
}

export function createAgentIdentity(deps: AgentIdentityDeps): AgentIdentity {
  const { client, dataDir, attestor, clock, log } = deps;
  let svid: AgentSvid | undefined;
  let stored: StoredIdentity | undefined;
  let attestorUsed = false;

  async function fromWire(wire: X509SvidWire, privateKey: KeyObject): Promise<AgentSvid> {
    const certChain = wire.certChain.map((c) => fromBase64(c, 'ERR_INTERNAL', 'agent SVID certificate from the issuer'));
    const leaf = certChain[0];
    if (!leaf) throw new WispError('ERR_INTERNAL', 'issuer returned an empty agent SVID chain');
    const info = matchingCertificateInfo(leaf, privateKey);
    if (!info) throw new WispError('ERR_INTERNAL', 'issuer returned an agent SVID for another key');
    return { privateKey: await toSigningCryptoKey(privateKey), certChain, spiffeId: info.spiffeId ?? wire.spiffeId, notBefore: info.notBefore, notAfter: info.notAfter };
  }

  async function attest(reason: string): Promise<AttestResponse & { agent: AgentSvid }> {
    if (!attestor) {
      throw new WispError('ERR_CONFIG_INVALID', `agent must attest (${reason}) but no node attestor is configured: set joinToken (--joinToken or WISP_JOIN_TOKEN) to a fresh join token, or awsIid / gcpIit / azureMsi on a cloud VM, or k8sPsat in a Kubernetes pod, or x509pop with a device certificate`);
    }
    if (attestor.singleUse && attestorUsed) {
      throw new WispError('ERR_JOIN_TOKEN_INVALID', `agent must attest again (${reason}) but its ${attestor.type} was already used by this process; create a new join token and restart with --joinToken`);
    }
    log.info({ ...attestor.describe(), reason }, 'attesting node');
    const keys = generateKeyPair();
    let res: AttestResponse;
    try {
      res = await countedCall(deps.telemetry, 'nodeAttestation', async () =>
        client.attest({
          attestationType: attestor.type,
          payload: await attestor.payload({
            csrPublicKeySpki: new Uint8Array(keys.publicKey.export({ type: 'spki', format: 'der' })),
            challenge: () => client.attestChallenge({ attestationType: attestor.type }),
          }),
          csr: toBase64(createCsr(keys)),
        }),
      );
    } catch (e) {
      if (e instanceof WispError && FATAL_ATTESTATION_CODES.has(e.code)) {
        const hint =
          attestor.type === 'join_token'
            ? ': the join token is unknown, expired or already used; create a new one and restart with --joinToken'
            : e.code === 'ERR_AGENT_ALREADY_ATTESTED'
              ? `: this node is already attested (trust on first use); evict its agent on the issuer to let it attest again`
              : `: ${e.message}`;
        throw new WispError(e.code, `node attestation (${attestor.type}) refused (${e.code})${hint}`, { cause: e });
      }
      throw e;
    }
    if (attestor.singleUse) attestorUsed = true;
    const agent = await fromWire(res.svid, keys.privateKey);
    await dataDir.saveAgentIdentity(exportPkcs8(keys.privateKey), agent.certChain);
    await dataDir.saveBundle(res.bundle);
    svid = agent;
    log.info({ [LOG_FIELDS.AGENT_ID]: agent.spiffeId, [LOG_FIELDS.EXPIRES_AT]: new Date(agent.notAfter).toISOString() }, 'node attested');
    return { ...res, agent };
  }

  return {
    current: () => svid,

    async start() {
      stored = await loadStoredIdentity(dataDir, log);
      const reusable = reusableSvid(stored, clock());
      if (reusable) {
        svid = reusable;
        log.info({ [LOG_FIELDS.AGENT_ID]: svid.spiffeId, [LOG_FIELDS.EXPIRES_AT]: new Date(svid.notAfter).toISOString() }, 'reusing stored agent SVID');
        return { svid, bundle: stored.bundle };
      }
      const reason = stored.svid ? 'stored agent SVID expired' : 'first start';
      const res = await attest(reason);
      return { svid: res.agent, bundle: res.bundle };
    },

    async renewIfDue(force = false) {
      const cur = svid;
      if (!cur) throw new TypeError('renewIfDue() before start()');
      const now = clock();
      if (now >= cur.notAfter) {
        await attest('agent SVID expired while the issuer was unreachable');
        return true;
      }
      if (!force && !shouldRotate(cur.notBefore, cur.notAfter, now)) return false;
      const next = await countedCall(deps.telemetry, 'agentSvidRotate', async () => {
        const keys = generateKeyPair();
        const res = await client.renew({ csr: toBase64(createCsr(keys, cur.spiffeId)) });
        const renewed = await fromWire(res.svid, keys.privateKey);
        await dataDir.saveAgentIdentity(exportPkcs8(keys.privateKey), renewed.certChain);
        return renewed;
      });
      svid = next;
      log.info({ [LOG_FIELDS.AGENT_ID]: next.spiffeId, [LOG_FIELDS.EXPIRES_AT]: new Date(next.notAfter).toISOString() }, 'agent SVID renewed');
      return true;
    },

    stored() {
      return stored?.svid?.spiffeId ? { spiffeId: stored.svid.spiffeId, bundle: stored.bundle } : undefined;
    },

    async reattest(reason) {
      const res = await attest(reason);
      return res.bundle;
    },
  };
}
