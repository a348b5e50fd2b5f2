/**
 * The CSI Node service of a node-only driver: NodePublishVolume bind-mounts the Workload API socket
 * directory read-only onto the target path, NodeUnpublishVolume removes it; both are idempotent and read
 * the current state from the mount table (mounter.ts), so a restarted driver picks up where it was.
 * Which requests are accepted (CSI spec, NodePublishVolume errors; as the upstream SPIFFE CSI driver):
 * only ephemeral inline volumes (`csi.storage.k8s.io/ephemeral=true`) published read-only, as a plain
 * mount of one node.
 * @module
 */
import { mkdir, rmdir, unlink } from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import type { Logger } from 'pino';
import { alreadyExists, type CsiError, failedPrecondition, invalidArgument } from './errors.js';
import { VolumeCapability_AccessMode_Mode as AccessMode, type NodePublishVolumeRequest, type NodeUnpublishVolumeRequest } from './gen/csi/v1/csi_pb.js';
import type { Mounter } from './mounter.js';

/** The volume-context key the kubelet sets to "true" for an inline (ephemeral) volume. */
export const EPHEMERAL_CONTEXT_KEY = 'csi.storage.k8s.io/ephemeral';

/** Access modes of a volume used on one node; a bind of a node-local directory is never multi-node. */
const SINGLE_NODE_MODES = new Set([AccessMode.SINGLE_NODE_WRITER, AccessMode.SINGLE_NODE_READER_ONLY, AccessMode.SINGLE_NODE_SINGLE_WRITER, AccessMode.SINGLE_NODE_MULTI_WRITER]);

/** How many stacked mounts NodeUnpublishVolume removes at one target before it gives up. */
const MAX_STACKED_UNMOUNTS = 8;

function checkTargetPath(targetPath: string): CsiError | undefined {
  if (targetPath === '') return invalidArgument('request missing required target path');
  if (!isAbsolute(targetPath) || targetPath.includes('\0')) return invalidArgument('target path must be an absolute path');
  return undefined;
}

/** Why a NodePublishVolume request is refused (the spec's code), or undefined when it is acceptable. */
export function publishRequestProblem(req: NodePublishVolumeRequest): CsiError | undefined {
  if (req.volumeId === '') return invalidArgument('request missing required volume id');
  const pathProblem = checkTargetPath(req.targetPath);
  if (pathProblem) return pathProblem;
  const capability = req.volumeCapability;
  if (!capability) return invalidArgument('request missing required volume capability');
  const accessType = capability.accessType;
  if (accessType.case === undefined) return invalidArgument('request missing required volume capability access type');
  if (accessType.case === 'block') return failedPrecondition('block volumes are not supported: the volume is a directory');
  if (accessType.value.fsType !== '' || accessType.value.mountFlags.length > 0 || accessType.value.volumeMountGroup !== '') {
    return failedPrecondition('fs_type, mount_flags and volume_mount_group are not supported: the volume is a bind mount');
  }
  const mode = capability.accessMode?.mode ?? AccessMode.UNKNOWN;
  if (mode === AccessMode.UNKNOWN) return invalidArgument('request missing required volume capability access mode');
  if (!SINGLE_NODE_MODES.has(mode)) return failedPrecondition(`access mode ${AccessMode[mode]} is not supported: the volume is local to one node`);
  if (!req.readonly) return invalidArgument("the volume must be published read-only (pod.spec.volumes[].csi.readOnly: true)");
  if (req.volumeContext[EPHEMERAL_CONTEXT_KEY] !== 'true') return invalidArgument('only ephemeral inline volumes are supported');
  return undefined;
}

/** Why a NodeUnpublishVolume request is refused, or undefined. */
export function unpublishRequestProblem(req: NodeUnpublishVolumeRequest): CsiError | undefined {
  if (req.volumeId === '') return invalidArgument('request missing required volume id');
  return checkTargetPath(req.targetPath);
}

export interface NodeServiceDeps {
  /** the directory holding the agent's Workload API socket */
  socketDir: string;
  mounter: Mounter;
  log: Logger;
}

export interface NodeService {
  publish(req: NodePublishVolumeRequest): Promise<void>;
  unpublish(req: NodeUnpublishVolumeRequest): Promise<void>;
}

/**
 * One operation at a time per target path, so two calls for the same volume (a CO retrying while the first
 * still runs) never mount twice. This holds no state beyond the calls in flight.
 */
function perPathQueue() {
  const tails = new Map<string, Promise<unknown>>();
  return async function serialize<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const previous = tails.get(path) ?? Promise.resolve();
    const current = previous.then(fn, fn);
    const settled = current.catch(() => undefined);
    tails.set(path, settled);
    try {
      return await current;
    } finally {
      if (tails.get(path) === settled) tails.delete(path);
    }
  };
}

export function createNodeService({ socketDir, mounter, log }: NodeServiceDeps): NodeService {
  const serialize = perPathQueue();

  async function publish(req: NodePublishVolumeRequest): Promise<void> {
    const problem = publishRequestProblem(req);
    if (problem) throw problem;
    const target = normalize(req.targetPath);
    // the pod's identity, never its service account tokens (volume context) or secrets
    const fields = { volume_id: req.volumeId, target_path: target, pod: `${req.volumeContext['csi.storage.k8s.io/pod.namespace'] ?? ''}/${req.volumeContext['csi.storage.k8s.io/pod.name'] ?? ''}` };
    await serialize(target, async () => {
      // the CO creates the parent; the plugin creates the target itself (CSI spec, NodePublishVolume)
      await mkdir(target, { mode: 0o750 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw new Error(`unable to create target path ${target}: ${err.message}`, { cause: err });
      });
      const state = await mounter.state(target);
      switch (state.kind) {
        case 'absent':
          throw new Error(`target path ${target} vanished while publishing`);
        case 'notDirectory':
          throw failedPrecondition(`target path ${target} exists and is not a directory`);
        case 'other':
          throw alreadyExists(`target path ${target} already has another mount (${state.mount.source} ${state.mount.root})`);
        case 'ours':
          if (!state.readOnly) {
            await mounter.remountReadOnly(target); // a bind left writable by a driver stopped between the two steps
            log.warn(fields, 'volume was mounted read-write; remounted read-only');
          } else log.debug(fields, 'volume already published');
          return;
        case 'unmounted':
          await mounter.bindReadOnly(socketDir, target);
          log.info(fields, 'volume published');
      }
    });
  }

  async function unpublish(req: NodeUnpublishVolumeRequest): Promise<void> {
    const problem = unpublishRequestProblem(req);
    if (problem) throw problem;
    const target = normalize(req.targetPath);
    const fields = { volume_id: req.volumeId, target_path: target };
    await serialize(target, async () => {
      let state = await mounter.state(target);
      for (let i = 0; (state.kind === 'ours' || state.kind === 'other') && i < MAX_STACKED_UNMOUNTS; i++) {
        await mounter.unmount(target);
        state = await mounter.state(target);
      }
      if (state.kind === 'ours' || state.kind === 'other') throw new Error(`target path ${target} is still a mount point after ${MAX_STACKED_UNMOUNTS} unmounts`);
      if (state.kind === 'absent') {
        log.debug(fields, 'volume already unpublished');
        return;
      }
      await (state.kind === 'notDirectory' ? unlink(target) : rmdir(target)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw new Error(`unable to remove target path ${target}: ${err.message}`, { cause: err });
      });
      log.info(fields, 'volume unpublished');
    });
  }

  return { publish, unpublish };
}
