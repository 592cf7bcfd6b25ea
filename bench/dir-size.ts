/**
 * Size of a repository on disk, as `du -sb` reports it (apparent bytes of everything
 * under the folder).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Apparent size in bytes of everything under `dir`. */
export async function dirSize(dir: string): Promise<number> {
  const { stdout } = await run('du', ['-sb', dir]);
  const bytes = Number(stdout.split('\t')[0]);
  if (!Number.isFinite(bytes)) throw new Error(`du -sb ${dir} printed ${stdout.trim()}`);
  return bytes;
}
