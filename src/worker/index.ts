/**
 * Worker entry: wires bindings into the app. No logic here.
 * @module
 */
import 'reflect-metadata';
import { systemClock } from '../shared/clock.js';
import { createApp } from './app.js';
import type { TrustDomainCaApi } from './ca/ca-api.js';
import { parseWorkerConfig } from './config.js';
import type { AppDeps } from './deps.js';

export { TrustDomainCa } from './ca/trust-domain-ca.js';

export function depsFromEnv(env: Env): AppDeps {
  const config = parseWorkerConfig(env);
  return {
    config,
    ca: () => env.CA.get(env.CA.idFromName(config.trustDomain)) as unknown as TrustDomainCaApi,
    db: env.DB,
    clock: systemClock,
  };
}

export default {
  fetch: (req, env, ctx) => createApp(depsFromEnv(env)).fetch(req, env, ctx),
  scheduled: async (_event, env) => {
    await depsFromEnv(env).ca().status();
  },
} satisfies ExportedHandler<Env>;
