/**
 * A directory of a recovery point as a tar stream, for the console's "download" of a folder.
 * Entries keep their mode, owner and mtime; a hard link's content is written again (the archive
 * must stand on its own even when the download starts below the link's first name); file bytes
 * come chunk by verified chunk, so a damaged chunk aborts the download instead of archiving
 * wrong bytes.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pack as tarPack, type Header } from 'tar-stream';
import { ROOT_PATH, baseName, compareWalkOrder, isWithin } from '../core/entry-path.js';
import { HoldfastError } from '../core/errors.js';
import { readManifest } from '../core/manifest-io.js';
import type { Entry } from '../core/manifest.js';
import type { ChunkSource } from '../core/chunk-io.js';
import type { PointRow } from '../pool/catalog.js';
import { fileStream, pointPath } from './browse.js';

/** The tar header of one entry, named below `top` (the downloaded directory's own name). */
function header(e: Entry, name: string): Partial<Header> & { name: string } {
  const base = { name, mode: e.mode, uid: e.uid, gid: e.gid, mtime: new Date(Number(BigInt(e.mtimeNs) / 1_000_000n)) };
  switch (e.type) {
    case 'dir':
      return { ...base, type: 'directory' };
    case 'file':
    case 'hardlink':
      return { ...base, type: 'file', size: e.size };
    case 'symlink':
      return { ...base, type: 'symlink', linkname: e.target };
    case 'fifo':
      return { ...base, type: 'fifo' };
    case 'chardev':
    case 'blockdev':
      return { ...base, type: e.type === 'chardev' ? 'character-device' : 'block-device', devmajor: Math.floor(e.rdev / 256) & 0xfff, devminor: (e.rdev & 0xff) | ((e.rdev >> 12) & 0xfff00) };
    case 'socket':
      return { ...base, type: 'file', size: 0 }; // tar has no socket type: an empty file stands in
  }
}

/** The directory at `dir` (and everything below it) as a tar archive. */
export async function directoryTar(source: ChunkSource, point: PointRow, dir: string, signal?: AbortSignal): Promise<{ name: string; stream: Readable }> {
  const want = pointPath(dir);
  const top = want === ROOT_PATH ? point.source : baseName(want);
  const entries = readManifest(source, point.manifest, signal)[Symbol.asyncIterator]();
  // find the directory first, so a wrong path is a clear error before any byte is sent
  let first: Entry | undefined;
  for (;;) {
    const n = await entries.next();
    if (n.done) break;
    if (n.value.path === want) {
      first = n.value;
      break;
    }
    if (compareWalkOrder(n.value.path, want) > 0) break;
  }
  if (!first) throw new HoldfastError('PATH_NOT_FOUND', `no '${want}' in recovery point ${point.id} of source '${point.source}'`, { path: want, point: point.id });
  if (first.type !== 'dir') throw new HoldfastError('BAD_ARGUMENT', `'${want}' in recovery point ${point.id} is a ${first.type}, not a directory`, { path: want });
  const pack = tarPack();
  const nameOf = (p: string): string => (p === want ? top : `${top}/${want === ROOT_PATH ? p : p.slice(want.length + 1)}`);
  const write = async (e: Entry): Promise<void> => {
    const h = header(e, nameOf(e.path) + (e.type === 'dir' ? '/' : ''));
    let sink: ReturnType<typeof pack.entry> | undefined;
    const done = new Promise<void>((resolve, reject) => {
      sink = pack.entry(h, (err) => (err ? reject(err) : resolve()));
    });
    if ((e.type === 'file' || e.type === 'hardlink') && e.size > 0 && sink) {
      for await (const data of fileStream(source, e, signal)) {
        if (!sink.write(data as Uint8Array)) await once(sink as unknown as NodeJS.EventEmitter, 'drain');
      }
      sink.end(undefined);
    }
    await done;
  };
  void (async () => {
    try {
      await write(first);
      for (;;) {
        const n = await entries.next();
        if (n.done || !isWithin(n.value.path, want)) break;
        await write(n.value);
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return { name: `${top}.tar`, stream: Readable.from(pack) };
}
