/**
 * The undo log of the change step: the original bytes of every image region and file
 * part it overwrites, and the files it adds. Written and synced before the change
 * touches the data set, so an interrupted run can always be put back.
 */
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One saved range: `length` original bytes of `path` at `offset` (path relative to the data set). */
export interface SavedRange {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
}

/** The log's index; the saved bytes follow one another in `undo.bin` in this order. */
export interface UndoIndex {
  readonly ranges: readonly SavedRange[];
  /** Files the change creates, to delete (relative to the data set). */
  readonly added: readonly string[];
}

/** The undo log in one folder. */
export class UndoLog {
  constructor(readonly dir: string) {}

  private get indexPath(): string {
    return join(this.dir, 'undo.json');
  }

  private get bytesPath(): string {
    return join(this.dir, 'undo.bin');
  }

  /** Writes index and bytes and syncs them; the index goes last, so its presence means complete. */
  async write(index: UndoIndex, bytes: Buffer): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
    await writeFile(this.bytesPath, bytes, { flush: true });
    const handle = await open(this.indexPath, 'w');
    try {
      await handle.writeFile(JSON.stringify(index));
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** The index and bytes, or undefined when there is no complete log. */
  async read(): Promise<{ index: UndoIndex; bytes: Buffer } | undefined> {
    try {
      const index = JSON.parse(await readFile(this.indexPath, 'utf8')) as UndoIndex;
      return { index, bytes: await readFile(this.bytesPath) };
    } catch {
      return undefined;
    }
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
