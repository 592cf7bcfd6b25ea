/**
 * A content digest of the data set (or of a restore of it): for the image and for every
 * file under the files folder, its size and SHA-256, keyed by path relative to the data
 * set ("disk.img", "files/d0/d1/d2/f00042.txt").
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Path relative to the data set → "size:sha256". */
export type DataDigest = Map<string, string>;

const STREAM_ABOVE = 8 * 1024 * 1024;

async function fileDigest(path: string): Promise<string> {
  const { size } = await stat(path);
  const hash = createHash('sha256');
  if (size <= STREAM_ABOVE) {
    hash.update(await readFile(path));
  } else {
    for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  }
  return `${size}:${hash.digest('hex')}`;
}

async function walk(dir: string, prefix: string, into: DataDigest): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const name = `${prefix}/${entry.name}`;
    if (entry.isDirectory()) await walk(path, name, into);
    else if (entry.isFile()) into.set(name, await fileDigest(path));
    else into.set(name, 'not a regular file');
  }
}

/** Digests the image at `imagePath` and the tree under `filesDir`; missing ones are simply absent. */
export async function digestData(imagePath: string, filesDir: string): Promise<DataDigest> {
  const digest: DataDigest = new Map();
  try {
    digest.set('disk.img', await fileDigest(imagePath));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  try {
    await walk(filesDir, 'files', digest);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return digest;
}
