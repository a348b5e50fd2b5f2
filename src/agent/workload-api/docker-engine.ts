/**
 * The Docker Engine API on its Unix socket, for the docker workload attestor: `GET /containers/<id>/json`
 * (container inspect) and `GET /images/<name>/json` (image inspect), plain HTTP over the socket
 * (src/node/http-request.ts with socketPath), `/v<dockerVersion>` in front when the version is pinned (as
 * SPIRE's `docker_version`; else the Engine's own). Only the fields the attestor uses are read and checked.
 * Every failure is a WispError ERR_UNAVAILABLE saying what to fix; the request has a deadline, so a Docker
 * that does not answer fails the call instead of holding it.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { httpRequest, HttpRequestError } from '../../node/http-request.js';

export interface DockerEngineOptions {
  /** the socket file (the path of `unix:///var/run/docker.sock`) */
  socketPath: string;
  /** `1.41`: the API version to ask for; undefined: the Engine's */
  apiVersion?: string;
  timeoutMs: number;
}

/** What the attestor reads from a container inspect (Config of the Engine API's ContainerInspectResponse). */
export interface DockerContainer {
  id: string;
  /** Config.Image: the image as the container was created with it (`envoyproxy/envoy:contrib-v1.29.1`) */
  image: string;
  labels: Record<string, string>;
  /** Config.Env: `KEY=value` strings */
  env: string[];
}

export interface DockerEngine {
  /** undefined when the Engine knows no such container (404) */
  inspectContainer(id: string): Promise<DockerContainer | undefined>;
  /** the image's ID (`sha256:<config digest>`), undefined when the Engine has no such image */
  imageId(name: string): Promise<string | undefined>;
}

/** A container inspect is a few KB; large label sets stay far below this. */
const MAX_INSPECT_BYTES = 4 * 1024 * 1024;

function engineError(message: string, cause?: unknown): WispError {
  return new WispError('ERR_UNAVAILABLE', `workload attestation failed: docker: ${message}`, cause === undefined ? undefined : { cause });
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The fields of a container inspect body; throws when they are not the Engine API's shapes. */
export function parseContainerInspect(text: string): DockerContainer {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error('container inspect is not JSON');
  }
  if (!isObject(body) || typeof body.Id !== 'string') throw new Error('container inspect has no Id');
  const config = body.Config;
  if (!isObject(config)) throw new Error('container inspect has no Config');
  const labels = config.Labels ?? {};
  const env = config.Env ?? [];
  const image = config.Image ?? '';
  if (!isObject(labels) || Object.values(labels).some((v) => typeof v !== 'string')) throw new Error('Config.Labels is not an object of strings');
  if (!Array.isArray(env) || env.some((e) => typeof e !== 'string')) throw new Error('Config.Env is not an array of strings');
  if (typeof image !== 'string') throw new Error('Config.Image is not a string');
  return { id: body.Id, image, labels: labels as Record<string, string>, env: env as string[] };
}

/**
 * @example
 * const docker = createDockerEngine({ socketPath: '/var/run/docker.sock', timeoutMs: 5_000 });
 * const container = await docker.inspectContainer(id);
 */
export function createDockerEngine(o: DockerEngineOptions): DockerEngine {
  const prefix = o.apiVersion ? `/v${o.apiVersion}` : '';
  async function get(path: string) {
    try {
      return await httpRequest({ url: new URL(`http://localhost${prefix}${path}`), method: 'GET', headers: { accept: 'application/json' }, timeoutMs: o.timeoutMs, maxResponseBytes: MAX_INSPECT_BYTES, socketPath: o.socketPath });
    } catch (e) {
      if (e instanceof HttpRequestError && e.kind === 'timeout') throw engineError(`no answer from the Docker Engine at unix://${o.socketPath} within ${o.timeoutMs} ms`, e);
      if (e instanceof HttpRequestError && e.kind === 'connect') {
        const hint = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is dockerd running? set workloadAttestors.docker.dockerSocketPath)' : e.code === 'EACCES' ? ' (the agent needs access to the socket: the docker group)' : '';
        throw engineError(`cannot reach the Docker Engine at unix://${o.socketPath}: ${e.message}${hint}`, e);
      }
      throw engineError(`unix://${o.socketPath}: ${(e as Error).message}`, e);
    }
  }
  function message(text: string): string {
    try {
      const m = (JSON.parse(text) as { message?: unknown }).message;
      return typeof m === 'string' ? `: ${m.slice(0, 200)}` : '';
    } catch {
      return '';
    }
  }
  return {
    async inspectContainer(id) {
      const res = await get(`/containers/${encodeURIComponent(id)}/json`);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw engineError(`container inspect of ${id} answered HTTP ${res.status}${message(res.text)}`);
      try {
        return parseContainerInspect(res.text);
      } catch (e) {
        throw engineError(`container inspect of ${id}: ${(e as Error).message}`, e);
      }
    },
    async imageId(name) {
      // a reference's '/' kept (`envoyproxy/envoy:v1`), as docker's own client sends it
      const res = await get(`/images/${name.split('/').map(encodeURIComponent).join('/')}/json`);
      if (res.status !== 200) return undefined;
      try {
        const id = (JSON.parse(res.text) as { Id?: unknown }).Id;
        return typeof id === 'string' && id ? id : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
