/** Out-of-space errors from the file system or SQLite become POOL_FULL, naming the pool. */
import { HoldfastError, errnoCode, isHoldfastError } from '../core/errors.js';

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

export function isOutOfSpace(err: unknown): boolean {
  const code = errnoCode(err);
  return code !== undefined && FULL_CODES.has(code);
}

export function asPoolError(err: unknown, pool: string): unknown {
  if (isHoldfastError(err) || !isOutOfSpace(err)) return err;
  return new HoldfastError(
    'POOL_FULL',
    `storage pool ${pool} is out of space (${(err as Error).message}); nothing already stored was changed. Free space (holdfast prune, then holdfast gc) or grow the file system, then run the sync again`,
    { pool },
    { cause: err },
  );
}
