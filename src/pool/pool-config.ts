/** The pool's config.json: format version and the parameters every writer must share. */
import { readFile } from 'node:fs/promises';
import { DEFAULT_CDC, DEFAULT_IMAGE_CHUNK, type CdcParams } from '../core/chunker.js';
import { HoldfastError, errnoCode } from '../core/errors.js';
import { POOL_FORMAT, POOL_VERSION } from './pool-layout.js';

export interface PoolConfig {
  format: typeof POOL_FORMAT;
  version: typeof POOL_VERSION;
  id: string;
  created: string;
  cdc: CdcParams;
  imageChunk: number;
  compressionLevel: number;
  packSize: number;
}

const positive = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;

function isPoolConfig(c: unknown): c is PoolConfig {
  if (typeof c !== 'object' || c === null) return false;
  const r = c as Record<string, unknown>;
  const cdc = r.cdc as Record<string, unknown> | undefined;
  return (
    r.format === POOL_FORMAT &&
    r.version === POOL_VERSION &&
    typeof r.id === 'string' &&
    typeof r.created === 'string' &&
    typeof cdc === 'object' &&
    cdc !== null &&
    positive(cdc.min) &&
    positive(cdc.avg) &&
    positive(cdc.max) &&
    positive(r.imageChunk) &&
    typeof r.compressionLevel === 'number' &&
    Number.isInteger(r.compressionLevel) &&
    r.compressionLevel >= 0 &&
    r.compressionLevel <= MAX_COMPRESSION_LEVEL &&
    positive(r.packSize)
  );
}

/** zstd level of new pools' chunks (`pool init --compression-level` sets another, 0 = raw). */
export const DEFAULT_COMPRESSION_LEVEL = 1;
export const MAX_COMPRESSION_LEVEL = 19;

export function defaultPoolConfig(id: string): PoolConfig {
  return {
    format: POOL_FORMAT,
    version: POOL_VERSION,
    id,
    created: new Date().toISOString(),
    cdc: DEFAULT_CDC,
    imageChunk: DEFAULT_IMAGE_CHUNK,
    // Why 1 and not 3: docs/design.md, "Chunks".
    compressionLevel: DEFAULT_COMPRESSION_LEVEL,
    packSize: 8 * 1024 * 1024,
  };
}

export async function readPoolConfig(file: string, dir: string): Promise<PoolConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
      throw new HoldfastError('POOL_NOT_FOUND', `no storage pool at ${dir} (run 'holdfast pool init ${dir}' first)`, { pool: dir });
    }
    throw new HoldfastError('PATH_UNREADABLE', `cannot read storage pool config ${file}: ${(err as Error).message}`, { pool: dir });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  if (!isPoolConfig(raw)) throw new HoldfastError('POOL_CORRUPT', `storage pool config ${file} is not valid or of an unknown version`, { pool: dir });
  return raw;
}
