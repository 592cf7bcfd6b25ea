/**
 * Writes a pack file's bytes with O_DIRECT where the file system allows it. A pack is fsynced at
 * once anyway, so the page cache gains nothing from it, and copying every byte into the cache
 * costs the kernel about 1.7 CPU-seconds per GiB on this class of machine against 0.25 direct.
 * The parts are gathered into one aligned buffer, written padded to the alignment, and the file
 * is truncated back to its exact length before the fsync. Where O_DIRECT is refused (tmpfs,
 * some network file systems) or no aligned memory is to be had, the caller writes buffered.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { alignedBuffer, DIRECT_ALIGN } from '../workers/direct-io.js';

const SPARE = 2;
const spare: Buffer[] = [];
/** set once a file system refused O_DIRECT: this process then stops trying */
let refused = false;

function roundUp(n: number): number {
  return Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;
}

function bufferFor(size: number): Buffer | undefined {
  const i = spare.findIndex((b) => b.length >= size);
  if (i >= 0) return spare.splice(i, 1)[0];
  return alignedBuffer(size);
}

function giveBack(b: Buffer): void {
  if (spare.length < SPARE) spare.push(b);
}

/**
 * Creates `path` (exclusive, `mode`) holding the concatenated parts, fsynced. Returns false,
 * having created nothing, when direct I/O is not possible here; throws on a real failure (the
 * caller removes what was written).
 */
export async function writePackDirect(path: string, parts: Uint8Array[], mode: number): Promise<boolean> {
  if (refused) return false;
  let total = 0;
  for (const p of parts) total += p.length;
  const padded = roundUp(total);
  const buf = bufferFor(padded);
  if (!buf) return false;
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, mode);
  } catch (err) {
    giveBack(buf);
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    // The file may have been created before the flag was refused.
    await unlink(path).catch(() => undefined);
    refused = true;
    return false;
  }
  try {
    let at = 0;
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    buf.fill(0, total, padded);
    let done = 0;
    while (done < padded) {
      const { bytesWritten } = await fh.write(buf, done, padded - done, done);
      // A short count (a file system filling up) that breaks the alignment ends here: the next
      // direct write would fail with EINVAL and hide the real cause.
      if (bytesWritten === 0 || (bytesWritten % DIRECT_ALIGN !== 0 && done + bytesWritten < padded)) {
        throw Object.assign(new Error(`short write to pack ${path} (file system full?)`), { code: 'ENOSPC' });
      }
      done += bytesWritten;
    }
    if (padded !== total) await fh.truncate(total);
    await fh.sync();
  } finally {
    giveBack(buf);
    await fh.close();
  }
  return true;
}
