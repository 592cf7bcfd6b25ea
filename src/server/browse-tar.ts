/**
 * A directory of a recovery point, or several chosen entries, as a tar stream, for the console's
 * "download" of a folder or of what is chosen.
 * Entries keep their mode, owner and mtime; a hard link's content is written again (the archive
 * must stand on its own even when the download starts below the link's first name); file bytes
 * come chunk by verified chunk, so a damaged chunk aborts the download instead of archiving
 * wrong bytes.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pack as tarPack, type Header } from 'tar-stream';
import { ROOT_PATH, baseName, compareWalkOrder, isWithin, restoreSelection } from '../core/entry-path.js';
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

const topName = (point: PointRow, p: string): string => (p === ROOT_PATH ? point.source : baseName(p));

/** The directory at `dir` (and everything below it) as a tar archive. */
export async function directoryTar(source: ChunkSource, point: PointRow, dir: string, signal?: AbortSignal): Promise<{ name: string; stream: Readable }> {
  const want = pointPath(dir);
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
  return { name: `${topName(point, want)}.tar`, stream: tarOf(source, point, entries, [want], first, signal) };
}

/**
 * Several entries of a point (files, or directories with everything below them) as one tar
 * archive, each under its own name, as a restore of them would place them. Every one is looked
 * up first, so a wrong path is a clear error before any byte is sent.
 */
export async function selectionTar(source: ChunkSource, point: PointRow, paths: string[], signal?: AbortSignal): Promise<{ name: string; stream: Readable }> {
  const chosen = restoreSelection(paths.map(pointPath));
  let found = 0;
  for await (const e of readManifest(source, point.manifest, signal)) {
    const want = chosen[found] as string;
    if (e.path === want) found++;
    else if (compareWalkOrder(e.path, want) > 0) break;
    if (found === chosen.length) break;
  }
  const missing = chosen[found];
  if (missing !== undefined) throw new HoldfastError('PATH_NOT_FOUND', `no '${missing}' in recovery point ${point.id} of source '${point.source}'`, { path: missing, point: point.id });
  const entries = readManifest(source, point.manifest, signal)[Symbol.asyncIterator]();
  return { name: `${point.source}-${point.id}.tar`, stream: tarOf(source, point, entries, chosen, undefined, signal) };
}

/** Writes the chosen entries (walk order, none inside another) and what is below them, from `entries` on (`first`: one already read). */
function tarOf(source: ChunkSource, point: PointRow, entries: AsyncIterator<Entry>, chosen: string[], first: Entry | undefined, signal?: AbortSignal): Readable {
  const pack = tarPack();
  let current = 0;
  const nameOf = (p: string): string => {
    const s = chosen[current] as string;
    return p === s ? topName(point, s) : `${topName(point, s)}/${s === ROOT_PATH ? p : p.slice(s.length + 1)}`;
  };
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
      for (let n = first ? { done: false as const, value: first } : await entries.next(); !n.done; n = await entries.next()) {
        const p = n.value.path;
        // past a chosen run: on to the next chosen entry
        while (current < chosen.length && !isWithin(p, chosen[current] as string) && compareWalkOrder(p, chosen[current] as string) > 0) current++;
        if (current === chosen.length) break;
        if (isWithin(p, chosen[current] as string)) await write(n.value);
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return Readable.from(pack);
}
