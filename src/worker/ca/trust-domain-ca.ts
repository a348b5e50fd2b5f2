/**
 * The trust domain's CA: one Durable Object per trust domain holding the X.509 CA and JWT signing keys.
 * (Skeleton; the CA work fills it in.)
 * @module
 */
import { DurableObject } from 'cloudflare:workers';
import type { Result } from '../../shared/result.js';
import type { PublishedKeys, SignedJwtSvid, SignedX509Svid, SignJwtSvidRequest, SignX509SvidRequest, TrustDomainCaApi } from './ca-api.js';

export class TrustDomainCa extends DurableObject<Env> implements TrustDomainCaApi {
  async signX509Svids(_requests: SignX509SvidRequest[]): Promise<Result<SignedX509Svid>[]> {
    throw new Error('not implemented');
  }
  async signJwtSvid(_request: SignJwtSvidRequest): Promise<Result<SignedJwtSvid>> {
    throw new Error('not implemented');
  }
  async getPublishedKeys(): Promise<PublishedKeys> {
    throw new Error('not implemented');
  }
  async status(): Promise<{ ready: boolean }> {
    return { ready: false };
  }
}
