/**
 * A tracker's state for one source: a small JSON file in the agent's state directory, replaced
 * atomically (temporary file, fsync, rename, directory fsync) so a crash leaves the old state or
 * the new one, never a torn one. A missing or unreadable file means "no tracking": the next sync
 * reads everything.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HoldfastError } from '../../core/errors.js';

export class TrackerState {
  readonly file: string;

  constructor(
    readonly dir: string,
    source: string,
    tracker: string,
  ) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(source)) throw new HoldfastError('BAD_ARGUMENT', `source name '${source}' cannot name a state file`);
    this.file = join(dir, `${source}.${tracker}.json`);
  }

  /** The saved state, or undefined when there is none or it cannot be parsed. */
  async load<T extends object>(): Promise<T | undefined> {
    try {
      const v = JSON.parse(await readFile(this.file, 'utf8')) as unknown;
      return typeof v === 'object' && v !== null ? (v as T) : undefined;
    } catch {
      return undefined;
    }
  }

  async save(value: object): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(value)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  async clear(): Promise<void> {
    await rm(this.file, { force: true });
  }
}
