/**
 * The index files read for loading a pool's index, a few at a time ahead of their use, each into
 * one of a handful of buffers that go round. Memory a process touches for the first time costs
 * about 5 ms per MiB on these VMs, more than reading into it: a buffer of its own for each file
 * (7 MB for a pool of 2.6 GB stored) cost every command that opens the pool some 35 ms.
 */
import { open } from 'node:fs/promises';
import { errnoCode } from '../core/errors.js';

const READ_AHEAD = 16;
const MIN_BUFFER = 64 * 1024;

/**
 * Calls `each` with every file's bytes in name order (undefined for a file gone since it was
 * listed). The bytes are valid only during the call. `sizes` (from a stat, 0 when unknown) only
 * size the buffers: a file that grew since is read whole all the same.
 */
export async function forEachIndexFile(dir: string, names: string[], sizes: number[], each: (name: string, bytes: Buffer | undefined) => void): Promise<void> {
  const spare: Buffer[] = [];
  // Longer than the file, so that a read that fills the buffer means the file is larger than stated.
  const take = (size: number): Buffer => {
    const i = spare.findIndex((b) => b.length > size);
    return i >= 0 ? (spare.splice(i, 1)[0] as Buffer) : Buffer.allocUnsafe(Math.max(MIN_BUFFER, size + 1));
  };
  const read = async (i: number): Promise<{ buf?: Buffer; bytes?: Buffer }> => {
    let fh;
    try {
      fh = await open(`${dir}/${names[i] as string}`, 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return {}; // gc deleted it after writing its replacement
      throw err;
    }
    const buf = take(sizes[i] ?? 0);
    try {
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead < buf.length) return { buf, bytes: buf.subarray(0, bytesRead) };
      spare.push(buf);
      return { bytes: await fh.readFile() };
    } catch (err) {
      spare.push(buf);
      throw err;
    } finally {
      await fh.close();
    }
  };
  const ahead: Array<Promise<{ buf?: Buffer; bytes?: Buffer }>> = [];
  const start = (i: number): void => {
    if (i >= names.length) return;
    const p = read(i);
    p.catch(() => undefined); // a failure is seen when its turn comes
    ahead.push(p);
  };
  for (let i = 0; i < READ_AHEAD; i++) start(i);
  for (const [i, name] of names.entries()) {
    const { buf, bytes } = await (ahead.shift() as Promise<{ buf?: Buffer; bytes?: Buffer }>);
    each(name, bytes);
    if (buf) spare.push(buf);
    start(i + READ_AHEAD);
  }
}
