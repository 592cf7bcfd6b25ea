/**
 * The catalogue of expected errors. Each has a stable code, an exit status for the CLI and an
 * HTTP status for the API; messages name the object (pool, source, point, path, digest).
 * Anything that is not a HoldfastError is a bug and is reported as such.
 */
export const errorCatalogue = {
  POOL_NOT_FOUND: { exit: 3, http: 404, text: 'storage pool not found' },
  POOL_EXISTS: { exit: 3, http: 409, text: 'storage pool already exists' },
  POOL_CORRUPT: { exit: 4, http: 500, text: 'storage pool is damaged' },
  SOURCE_NOT_FOUND: { exit: 3, http: 404, text: 'source not found' },
  POINT_NOT_FOUND: { exit: 3, http: 404, text: 'recovery point not found' },
  PATH_NOT_FOUND: { exit: 3, http: 404, text: 'path not found' },
  PATH_UNREADABLE: { exit: 3, http: 403, text: 'path cannot be read' },
  TARGET_NOT_EMPTY: { exit: 5, http: 409, text: 'restore target is not empty' },
  UNSAFE_PATH: { exit: 4, http: 400, text: 'path would leave its root' },
  CHUNK_MISSING: { exit: 4, http: 500, text: 'chunk missing from pool' },
  CHUNK_CORRUPT: { exit: 4, http: 500, text: 'chunk is damaged' },
  BAD_ARGUMENT: { exit: 2, http: 400, text: 'invalid argument' },
  KIND_MISMATCH: { exit: 2, http: 409, text: 'source kind does not match' },
  SOURCE_UNREADABLE: { exit: 6, http: 502, text: 'the source could not be read through its tracker' },
  ABORTED: { exit: 130, http: 499, text: 'operation aborted' },
  RETRY: { exit: 75, http: 409, text: 'a transient conflict; run it again' },
  POOL_FULL: { exit: 7, http: 507, text: 'the storage pool is out of space' },
  UNAUTHORIZED: { exit: 8, http: 401, text: 'not authenticated' },
  FORBIDDEN: { exit: 8, http: 403, text: 'not allowed' },
  RATE_LIMITED: { exit: 75, http: 429, text: 'too many attempts; wait and try again' },
  NOT_FOUND: { exit: 3, http: 404, text: 'not found' },
  CONFLICT: { exit: 5, http: 409, text: 'conflicts with the current state' },
  JOB_FAILED: { exit: 9, http: 500, text: 'the job failed' },
  SERVER_UNREACHABLE: { exit: 10, http: 502, text: 'the protection server cannot be reached' },
  SERVER_ERROR: { exit: 11, http: 500, text: 'the protection server failed (see its log)' },
  BUSY: { exit: 10, http: 503, text: 'the protection server is busy; try again shortly' },
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCatalogue, code);
}

export class HoldfastError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HoldfastError';
    this.code = code;
    this.details = details;
  }

  get exitCode(): number {
    return errorCatalogue[this.code].exit;
  }

  get httpStatus(): number {
    return errorCatalogue[this.code].http;
  }
}

export function isHoldfastError(err: unknown): err is HoldfastError {
  return err instanceof HoldfastError;
}

/** Bugs are assertions, not expected errors. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** The errno code of a Node system error, if any. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new HoldfastError('ABORTED', 'operation aborted');
}
