/**
 * The change journals of this agent process, one per dir source, by source name. Only a
 * long-running process keeps journals (the agent daemon starts them for its dir sources at
 * start, and for a new source when its first sync job arrives); the local CLI never does, so its
 * dir syncs stay 'full'. One registry per process because inotify watches belong to the process:
 * the daemon starts journals here and the 'inotify' tracker finds them here, without threading a
 * handle through every job.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { JournalWatcher } from './journal-watcher.js';

export class JournalRegistry {
  private readonly watchers = new Map<string, JournalWatcher>();
  /** this process's run: tracker state saved by an earlier process never names one of our generations */
  private readonly run = randomBytes(6).toString('hex');

  /**
   * Starts journaling `path` for source `name` (idempotent; a source whose path changed gets a
   * new journal). Throws when inotify itself cannot start (too many inotify instances).
   */
  watch(name: string, path: string, exclude: string[] = []): JournalWatcher {
    const root = resolve(path);
    const had = this.watchers.get(name);
    if (had && !had.closed && had.root === root) return had;
    had?.close();
    const w = new JournalWatcher(root, `${this.run}.${name}`, exclude);
    this.watchers.set(name, w);
    return w;
  }

  /** The running journal of source `name` at `path`, if there is one. */
  get(name: string, path: string): JournalWatcher | undefined {
    const w = this.watchers.get(name);
    return w && !w.closed && w.root === resolve(path) ? w : undefined;
  }

  stop(name: string): void {
    this.watchers.get(name)?.close();
    this.watchers.delete(name);
  }

  stopAll(): void {
    for (const name of [...this.watchers.keys()]) this.stop(name);
  }
}

/** This process's journals. */
export const changeJournals = new JournalRegistry();
