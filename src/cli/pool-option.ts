/** Opening the pool named by --pool for the length of one command. */
import { Pool } from '../pool/pool.js';
import { HoldfastError } from '../core/errors.js';

/**
 * `warm`: the command reads or writes data, so the codec workers start while the index loads.
 * `lazyIndex`: the command may not need the index (pool.ts), so it loads when first used.
 */
export async function withPool<T>(dir: string | undefined, fn: (pool: Pool) => Promise<T>, opts: { warm?: boolean; lazyIndex?: boolean } = {}): Promise<T> {
  if (!dir) throw new HoldfastError('BAD_ARGUMENT', 'no storage pool given: pass --pool DIR');
  const pool = await Pool.open(dir, opts);
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

/** An AbortSignal that fires on Ctrl-C, so long work stops cleanly with nothing committed. */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  return ac.signal;
}
