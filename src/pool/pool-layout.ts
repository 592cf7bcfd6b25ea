/** Where things live inside a pool directory. */
import { join } from 'node:path';

export const POOL_FORMAT = 'holdfast-pool';
export const POOL_VERSION = 1;

export function poolPaths(dir: string) {
  return {
    root: dir,
    config: join(dir, 'config.json'),
    catalog: join(dir, 'catalog.sqlite'),
    packs: join(dir, 'packs'),
    index: join(dir, 'index'),
    points: join(dir, 'points'),
    pack: (id: string) => join(dir, 'packs', id.slice(0, 2), `${id}.pack`),
    packDir: (id: string) => join(dir, 'packs', id.slice(0, 2)),
    indexFile: (id: string) => join(dir, 'index', `${id}.idx`),
    pointFile: (id: string) => join(dir, 'points', `${id}.json`),
  };
}

export type PoolPaths = ReturnType<typeof poolPaths>;
