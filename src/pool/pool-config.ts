/** The pool's config.json: format version and the parameters every writer must share. */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DEFAULT_CDC, DEFAULT_IMAGE_CHUNK } from '../core/chunker.js';
import { HoldfastError, errnoCode } from '../core/errors.js';
import { POOL_FORMAT, POOL_VERSION } from './pool-layout.js';

export const poolConfigSchema = z.object({
  format: z.literal(POOL_FORMAT),
  version: z.literal(POOL_VERSION),
  id: z.string(),
  created: z.string(),
  cdc: z.object({ min: z.number().int().positive(), avg: z.number().int().positive(), max: z.number().int().positive() }),
  imageChunk: z.number().int().positive(),
  compressionLevel: z.number().int().min(0).max(19),
  packSize: z.number().int().positive(),
});

export type PoolConfig = z.infer<typeof poolConfigSchema>;

export function defaultPoolConfig(id: string): PoolConfig {
  return {
    format: POOL_FORMAT,
    version: POOL_VERSION,
    id,
    created: new Date().toISOString(),
    cdc: DEFAULT_CDC,
    imageChunk: DEFAULT_IMAGE_CHUNK,
    compressionLevel: 3,
    packSize: 16 * 1024 * 1024,
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
  const parsed = poolConfigSchema.safeParse(raw);
  if (!parsed.success) throw new HoldfastError('POOL_CORRUPT', `storage pool config ${file} is not valid or of an unknown version`, { pool: dir });
  return parsed.data;
}
