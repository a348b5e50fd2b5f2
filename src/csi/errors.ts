/**
 * A CSI answer that is not OK: a gRPC status code (the codes the CSI spec names for each condition) and a
 * message for the CO's events. grpc-js sends `code` and `details` of an error passed to a callback.
 * @module
 */
import { status } from '@grpc/grpc-js';

export class CsiError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
  ) {
    super(details);
    this.name = 'CsiError';
  }
}

export const invalidArgument = (details: string) => new CsiError(status.INVALID_ARGUMENT, details);
export const alreadyExists = (details: string) => new CsiError(status.ALREADY_EXISTS, details);
export const failedPrecondition = (details: string) => new CsiError(status.FAILED_PRECONDITION, details);

/** Any thrown value as a CsiError: an unexpected one becomes INTERNAL with its message. */
export function asCsiError(err: unknown): CsiError {
  if (err instanceof CsiError) return err;
  return new CsiError(status.INTERNAL, err instanceof Error ? err.message : String(err));
}
