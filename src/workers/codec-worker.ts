/**
 * Worker thread body: hashing, compression and verified decompression off the main thread, and
 * the reading of small files, whose per-file system calls would otherwise load the main thread.
 * Hashed buffers stay here ("held") until the main thread says which chunks it wants encoded,
 * so chunk data crosses threads once, not three times.
 */
import { parentPort } from 'node:worker_threads';
import { decodeMany, encodeMany, splitAndHash, verifyMany, type PlacedDecode, type StoredChunk } from '../core/codec.js';
import { cdcSplit } from './cdc.js';
import { close, closeSync, constants, fstat, ftruncateSync, open, openSync, read, unlinkSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { readXattrs } from './xattrs.js';
import { alignedBuffer, alignSkip, DIRECT_ALIGN, listDirStatsAsync, wholeBlocks, STAT, STAT_FIELDS, type DirStats } from '../native/index.js';
import { applyMetaSync } from './apply-meta.js';
import { bigBuffer, keepBigBuffer } from './big-buffers.js';
import { RECYCLED_SIZE, RETURNED_MIN, transferList, type CodecRequest, type CodecResponse, type DirListing, type FileWriteItem, type FileWriteResult, type RangeItem, type RangeWriteItem, type SmallFileItem, type SmallFileResult } from './codec-pool.js';

const held = new Map<number, Uint8Array[]>();

// Reads go through libuv's thread pool, so this thread computes while they wait on the disk.
const openAsync = promisify(open);
const readAsync = (fd: number, buf: Buffer, off: number, len: number, at: number): Promise<number> =>
  new Promise((res, rej) => read(fd, buf, off, len, at, (err, n) => (err ? rej(err) : res(n))));
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);

/** Aligned read buffers of this worker (RECYCLED_SIZE), reused once their hold is released. */
const freeBuffers: Buffer[] = [];
/** views handed out by readRange, to the whole buffer they came from */
const ownViews = new WeakMap<Uint8Array, Buffer>();
const MAX_FREE = 6;
/** set when O_DIRECT was refused here: read buffered from then on */
let directRefused = false;

/** views of a batch of small files read into one big buffer of this thread (readHashFiles) */
const slabViews = new WeakSet<Uint8Array>();

function release(bufs: Uint8Array[]): void {
  const slabs = new Set<ArrayBufferLike>();
  for (const b of bufs) {
    const whole = ownViews.get(b);
    if (whole && freeBuffers.length < MAX_FREE) freeBuffers.push(whole);
    if (slabViews.has(b)) slabs.add(b.buffer);
  }
  for (const ab of slabs) keepBigBuffer(ab);
}

/**
 * The large buffers a request's data came in, done with: they go back to the main thread for
 * its next reads (whatever came here is this thread's alone, moved or copied).
 */
function spentOf(items: Array<{ data: Uint8Array }>): Uint8Array[] {
  const seen = new Set<ArrayBufferLike>();
  for (const it of items) if (it.data.buffer.byteLength >= SPENT_MIN) seen.add(it.data.buffer);
  return [...seen].map((b) => new Uint8Array(b));
}
const SPENT_MIN = 1024 * 1024;

/** Reopens an open file for direct reads (the same file, whatever its path now names). */
function openDirect(fd: number): number | undefined {
  if (directRefused) return undefined;
  const path = `/proc/self/fd/${fd}`;
  const flags = constants.O_RDONLY | constants.O_DIRECT;
  try {
    return openSync(path, flags | constants.O_NOATIME);
  } catch {
    try {
      return openSync(path, flags);
    } catch {
      directRefused = true;
      return undefined;
    }
  }
}

/** Reads into buf from fd at `at` until `want` bytes or the end of the file; returns the count. */
async function readInto(fd: number, buf: Buffer, want: number, at: number): Promise<number> {
  let got = 0;
  while (got < want) {
    const n = await readAsync(fd, buf, got, want - got, at + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * Reads [offset, offset + length) of an open file into a buffer of this worker. Direct reads
 * skip the page cache's copy (a cold backup reads each byte once, and the copy costs the kernel
 * more than the read); a range that is not aligned, or a file system that refuses, is read
 * buffered.
 */
async function readRange(it: RangeItem): Promise<Uint8Array> {
  if (it.length > RECYCLED_SIZE || it.offset % DIRECT_ALIGN !== 0) {
    const buf = Buffer.allocUnsafeSlow(it.length);
    return buf.subarray(0, await readInto(it.fd, buf, it.length, it.offset));
  }
  const buf = freeBuffers.pop() ?? alignedBuffer(RECYCLED_SIZE) ?? Buffer.allocUnsafeSlow(RECYCLED_SIZE);
  let got = -1;
  const dfd = openDirect(it.fd);
  if (dfd !== undefined) {
    try {
      got = await readDirect(dfd, buf, it.length, it.offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      directRefused = true; // unaligned memory or a file system without O_DIRECT
      got = -1;
    } finally {
      closeSync(dfd);
    }
  }
  if (got < 0) got = await readInto(it.fd, buf, it.length, it.offset);
  const view = buf.subarray(0, got);
  ownViews.set(view, buf);
  return view;
}

async function openNoFollow(path: string, extra = 0): Promise<number> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | extra;
  try {
    return await openAsync(path, flags | constants.O_NOATIME);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return await openAsync(path, flags); // O_NOATIME needs ownership or CAP_FOWNER
  }
}

/**
 * Reads a whole small file; `same` tells whether it held still since the walk's stat. Into an
 * aligned `into` with room for whole blocks it reads direct (a cold read then skips filling the
 * page cache, whose fresh pages cost more here than the read).
 */
async function readSmallFile(path: string, expect: SmallFileItem['expect'], into?: Buffer, direct = false): Promise<{ buf: Buffer; same: boolean }> {
  let fd: number | undefined;
  if (direct && !directRefused) {
    fd = await openNoFollow(path, constants.O_DIRECT).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') directRefused = true; // tmpfs and the like
      return undefined; // anything else: the buffered open below reports it
    });
  }
  const viaDirect = fd !== undefined;
  fd ??= await openNoFollow(path);
  try {
    const buf = into ?? Buffer.allocUnsafeSlow(expect.size);
    let got = -1;
    if (viaDirect) {
      try {
        got = await readDirect(fd, buf, expect.size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        directRefused = true; // a file system without O_DIRECT: buffered from now on
        await closeAsync(fd);
        fd = await openNoFollow(path);
      }
    }
    if (got < 0) got = await readInto(fd, buf, expect.size, 0);
    const st = await fstatAsync(fd, { bigint: true });
    const same =
      got === expect.size && st.size === BigInt(expect.size) && st.mtimeNs.toString() === expect.mtimeNs && st.ctimeNs.toString() === expect.ctimeNs && st.ino.toString() === expect.ino;
    return { buf: buf.subarray(0, got), same };
  } finally {
    await closeAsync(fd);
  }
}

/**
 * Reads `length` bytes at `at` of a file opened O_DIRECT into aligned `buf`, in whole blocks: a
 * read that ends short of a block is the end of the file. Returns the bytes got, at most `length`.
 */
async function readDirect(fd: number, buf: Buffer, length: number, at = 0): Promise<number> {
  const padded = wholeBlocks(length);
  let got = 0;
  while (got < length) {
    const n = await readAsync(fd, buf, got, padded - got, at + got);
    got += n;
    if (n === 0 || got % DIRECT_ALIGN !== 0) break;
  }
  return Math.min(got, length);
}

/** Reads a batch of small files, all at once, and hashes each; a file that fails is reported, not thrown. */
async function readHashFiles(items: SmallFileItem[]): Promise<{ bufs: Uint8Array[]; results: SmallFileResult[] }> {
  // A batch of 1 MiB or more is read into one kept big buffer, given back when the hold is
  // released: a buffer per file came from malloc's heap and was freed only when the collector
  // got to it, so a fresh agent's heap grew, page by page, with most of what it read. Each file
  // gets whole blocks at an aligned place, so that it can be read direct.
  const rooms = items.map((it) => wholeBlocks(it.expect.size));
  const total = rooms.reduce((a, b) => a + b, 0);
  const slab = total >= RETURNED_MIN ? bigBuffer(total + DIRECT_ALIGN) : undefined;
  const skip = slab ? alignSkip(slab) : undefined;
  let at = skip ?? 0;
  const files = await Promise.all(
    items.map((it, i) => {
      const into = slab?.subarray(at, (at += rooms[i] as number));
      return readSmallFile(it.path, it.expect, into, skip !== undefined).catch((err: unknown) => err as NodeJS.ErrnoException);
    }),
  );
  if (slab) for (const f of files) if (!(f instanceof Error)) slabViews.add(f.buf);
  const bufs: Uint8Array[] = [];
  const results = files.map((r, i): SmallFileResult => {
    if (r instanceof Error) {
      bufs.push(new Uint8Array(0));
      return { ok: false, code: r.code ?? 'EIO', message: r.message };
    }
    bufs.push(r.buf);
    return { ok: true, piece: splitAndHash(r.buf, (items[i] as SmallFileItem).rule, false, cdcSplit), same: r.same };
  });
  return { bufs, results };
}

/** Runs an asynchronous request; its failure becomes the error reply. */
function later(id: number, work: () => Promise<void>): void {
  work().catch((err: unknown) => reply({ id, op: 'error', message: (err as Error).stack ?? String(err) }));
}

function reply(res: CodecResponse, buffers: Uint8Array[] = []): void {
  parentPort?.postMessage(res, transferList(buffers));
}

/**
 * Decoded data that is written out before the next request: one growing buffer per worker,
 * aligned in memory (when the addon can tell) so that aligned runs of it can be written direct.
 */
let scratch: Buffer = Buffer.alloc(0);
let scratchAligned = false;
function scratchOf(size: number): Buffer {
  if (scratch.length < size) {
    const n = Math.max(size, Math.min(2 * scratch.length, 16 * 1024 * 1024));
    const aligned = alignedBuffer(n);
    scratch = aligned ?? Buffer.allocUnsafeSlow(n);
    scratchAligned = aligned !== undefined;
  }
  return scratch;
}

/** set when a direct write was refused here: write buffered from then on */
let directWriteRefused = false;

/**
 * Writes `len` bytes of `buf` from `from` at file offset `at`. Whole aligned blocks of an
 * aligned run go direct (O_DIRECT, through a reopening of the same file): the page cache's copy
 * of a restored image cost the kernel more than the write itself (1.5 GB: 3.9 CPU-s buffered,
 * 0.2 direct, on these VMs). The rest, and any run with `step` set, is written buffered.
 */
function writeRun(fd: number, buf: Buffer, from: number, len: number, at: number, step?: number): void {
  let done = 0;
  const whole = len - (len % DIRECT_ALIGN);
  if (step === undefined && whole > 0 && scratchAligned && buf === scratch && from % DIRECT_ALIGN === 0 && at % DIRECT_ALIGN === 0 && !directWriteRefused) {
    let dfd: number | undefined;
    try {
      dfd = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_DIRECT);
      while (done < whole) {
        const n = writeSync(dfd, buf, from + done, whole - done, at + done);
        done += n;
        if (n === 0 || n % DIRECT_ALIGN !== 0) break; // the rest buffered
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'EOPNOTSUPP' && code !== 'ENOENT') throw err;
      directWriteRefused = true; // a file system without O_DIRECT, or no /proc
    } finally {
      if (dfd !== undefined) closeSync(dfd);
    }
  }
  while (done < len) done += writeSync(fd, buf, from + done, Math.min(step ?? len, len - done), at + done);
}

/** Verifies every chunk of a batch, then writes them at their file offsets (contiguous ones at once). */
function writeAt(it: RangeWriteItem): FileWriteResult {
  const { out, placed } = decodeMany(it.pieces, scratchOf);
  for (let i = 0; i < placed.length; i++) {
    const p = placed[i] as PlacedDecode;
    if (!p.ok) return { ok: false, code: 'CHUNK_CORRUPT', message: `chunk ${(it.pieces[i] as StoredChunk).digest} is damaged: ${p.reason}` };
  }
  try {
    let i = 0;
    while (i < placed.length) {
      const first = placed[i] as { offset: number; length: number };
      const at = (it.pieces[i] as { offset: number }).offset;
      let len = first.length;
      for (i++; i < placed.length; i++) {
        const p = placed[i] as { offset: number; length: number };
        if ((it.pieces[i] as { offset: number }).offset !== at + len || p.offset !== first.offset + len) break;
        len += p.length;
      }
      writeRun(it.fd, out, first.offset, len, at, it.maxWrite);
    }
  } catch (err) {
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message };
  }
  return { ok: true, warnings: [] };
}

function writeFile(it: FileWriteItem): FileWriteResult {
  const { out, placed } = decodeMany(it.pieces, scratchOf);
  for (let i = 0; i < placed.length; i++) {
    const p = placed[i] as PlacedDecode;
    if (!p.ok) {
      const digest = (it.pieces[i] as StoredChunk).digest;
      return { ok: false, code: 'CHUNK_CORRUPT', message: `chunk ${digest} is damaged: ${p.reason}` };
    }
  }
  let fd: number;
  try {
    fd = openSync(it.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message };
  }
  try {
    let end = 0;
    placed.forEach((p, i) => {
      if (!p.ok) return;
      const at = (it.pieces[i] as { offset: number }).offset;
      const step = it.maxWrite ?? p.length;
      let done = 0;
      while (done < p.length) done += writeSync(fd, out, p.offset + done, Math.min(step, p.length - done), at + done);
      end = Math.max(end, at + p.length);
    });
    // Only a trailing hole needs a truncate (on ext4 an extending truncate is slow: orphan list).
    if (end < it.size) ftruncateSync(fd, it.size);
    closeSync(fd);
    const warnings: string[] = [];
    applyMetaSync(it.path, it.meta, warnings);
    return { ok: true, warnings };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed before the failure
    }
    try {
      unlinkSync(it.path);
    } catch {
      // already gone
    }
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message };
  }
}


/** Lists and stats one directory with one native call; xattrs are read only where there are some. */
async function listDir(dir: string): Promise<DirListing> {
  let raw: DirStats;
  try {
    raw = await listDirStatsAsync(dir);
  } catch (err) {
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message };
  }
  const n = raw.names.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => {
    const x = raw.names[a] as string;
    const y = raw.names[b] as string;
    return x < y ? -1 : x > y ? 1 : 0;
  });
  const names = order.map((i) => raw.names[i] as string);
  const stats = new BigInt64Array(n * STAT_FIELDS);
  let xattrs: Record<number, Record<string, string>> | undefined;
  order.forEach((from, k) => {
    stats.set(raw.stats.subarray(from * STAT_FIELDS, (from + 1) * STAT_FIELDS), k * STAT_FIELDS);
    const at = k * STAT_FIELDS;
    if (stats[at + STAT.mode] !== 0n && (stats[at + STAT.xattrBytes] as bigint) > 0n) {
      const x = readXattrs(join(dir, names[k] as string));
      if (x) (xattrs ??= {})[k] = x;
    }
  });
  return xattrs ? { ok: true, names, stats, xattrs } : { ok: true, names, stats };
}

parentPort?.on('message', (msg: CodecRequest) => {
  try {
    switch (msg.op) {
      case 'hash': {
        held.set(msg.id, msg.items.map((it) => it.buf));
        reply({ id: msg.id, op: 'hash', items: msg.items.map((it) => splitAndHash(it.buf, it.rule, it.detectZero, cdcSplit)) });
        return;
      }
      case 'readRanges': {
        later(msg.id, async () => {
          const bufs = await Promise.all(msg.items.map(readRange));
          held.set(msg.id, bufs);
          reply({ id: msg.id, op: 'hash', items: msg.items.map((it, i) => splitAndHash(bufs[i] as Uint8Array, it.rule, it.detectZero, cdcSplit)) });
        });
        return;
      }
      case 'readHash': {
        later(msg.id, async () => {
          const { bufs, results } = await readHashFiles(msg.items);
          held.set(msg.id, bufs);
          reply({ id: msg.id, op: 'readHashed', items: results });
        });
        return;
      }
      case 'encodeHeld': {
        const bufs = held.get(msg.holdId);
        held.delete(msg.holdId);
        if (!bufs) throw new Error(`no held buffers for job ${msg.holdId}`);
        const into = msg.into ? Buffer.from(msg.into.buffer, msg.into.byteOffset, msg.into.byteLength) : undefined;
        const { out, placed, usedInto } = encodeMany(msg.pieces.map(([item, off, len]) => (bufs[item] as Uint8Array).subarray(off, off + len)), msg.level, into);
        // encodeMany copied what it kept: the read buffers go back to be reused.
        release(bufs);
        // Whole, so they move rather than copy: a segment, or a file's segment joined with its carry.
        // Each memory once: the main thread keeps each returned buffer for reuse.
        const whole = new Set(bufs.filter((b) => b.byteOffset === 0 && b.buffer.byteLength >= RETURNED_MIN && !ownViews.has(b) && !slabViews.has(b)).map((b) => b.buffer));
        const returned = [...whole].map((ab) => new Uint8Array(ab));
        const unused = msg.into && !usedInto ? msg.into : undefined;
        reply({ id: msg.id, op: 'encoded', out, placed, returned, ...(unused ? { unused } : {}) }, [out, ...returned, ...(unused ? [unused] : [])]);
        return;
      }
      case 'writeAt': {
        const items = [writeAt(msg.item)];
        const spent = spentOf(msg.item.pieces);
        reply({ id: msg.id, op: 'written', items, spent }, spent);
        return;
      }
      case 'writeFiles': {
        const items = msg.items.map(writeFile);
        const spent = spentOf(msg.items.flatMap((it) => it.pieces));
        reply({ id: msg.id, op: 'written', items, spent }, spent);
        return;
      }
      case 'listDirs': {
        later(msg.id, async () => {
          const listings = await Promise.all(msg.paths.map(listDir));
          // Each listing's stats array moves to the caller, not copied.
          reply({ id: msg.id, op: 'listed', listings }, listings.flatMap((l) => (l.ok ? [new Uint8Array(l.stats.buffer)] : [])));
        });
        return;
      }
      case 'verify': {
        const { results, kept } = verifyMany(msg.items, scratchOf);
        // Moved here whole (it may be longer than the view: a kept upload body), so it goes back whole, not copied.
        const moved = [...(msg.back ? [new Uint8Array(msg.back.buffer)] : []), ...(kept ? [kept] : [])];
        reply({ id: msg.id, op: 'verified', results, ...(msg.back ? { back: msg.back } : {}), ...(kept ? { kept } : {}) }, moved);
        return;
      }
      case 'decode': {
        const { out, placed } = decodeMany(msg.items);
        const spent = spentOf(msg.items);
        reply({ id: msg.id, op: 'decoded', out, placed, spent }, [out, ...spent]);
        return;
      }
    }
  } catch (err) {
    reply({ id: msg.id, op: 'error', message: (err as Error).stack ?? String(err) });
  }
});
