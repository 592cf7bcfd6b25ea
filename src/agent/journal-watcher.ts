/**
 * Keeps the change journal of one dir source while the agent runs: an inotify watch on every
 * directory of the tree, events drained without blocking (a short timer, and always right before
 * a sync rotates generations) into the current `ChangeJournal`.
 *
 * Why native inotify and not fs.watch: fs.watch never reports IN_Q_OVERFLOW, and an overflow
 * silently loses events — the one thing a change journal must not do. Here an overflow, a watch
 * the kernel refuses (ENOSPC: fs.inotify.max_user_watches), or the source root moving away
 * breaks the current generation, so the next sync is a consistency check; the tree's watches are
 * then rebuilt at that sync's snapshot moment, before it reads anything.
 *
 * A directory that appears gets its watch first and is listed after, so nothing created in it
 * can slip between the two; its whole subtree is recorded as changed.
 */
import { closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errnoCode } from '../core/errors.js';
import { joinEntryPath, ROOT_PATH } from '../core/entry-path.js';
import { IN, inotifyAddWatch, inotifyInit, inotifyReadAll, listDirStats, STAT, STAT_FIELDS } from '../native/index.js';
import { ChangeJournal } from './journal.js';

const WATCH_MASK =
  IN.MODIFY | IN.ATTRIB | IN.CLOSE_WRITE | IN.MOVED_FROM | IN.MOVED_TO | IN.CREATE | IN.DELETE | IN.DELETE_SELF | IN.MOVE_SELF | IN.ONLYDIR | IN.DONT_FOLLOW | IN.EXCL_UNLINK;
const ENTRIES_CHANGED = IN.CREATE | IN.DELETE | IN.MOVED_FROM | IN.MOVED_TO;
const S_IFMT = 0o170000n;
const S_IFDIR = 0o040000n;
const S_IFREG = 0o100000n;
/** Often enough that the kernel queue (16,384 events by default) rarely fills between drains. */
const DRAIN_MS = 50;

export class JournalWatcher {
  readonly root: string;
  /** identifies this watcher's life: a restarted agent has another, so old tracker state never matches */
  readonly run: string;
  /** files seen with more than one link: a write through another name raises no event here, so every sync re-reads their metadata */
  linked = new Set<string>();
  private fd: number;
  private readonly wds = new Map<number, string>();
  private readonly exclude: Set<string>;
  private generation = 0;
  private current: ChangeJournal;
  private rescan = false;
  private readonly timer: NodeJS.Timeout;
  private readonly buffer = Buffer.alloc(64 * 1024);

  constructor(root: string, run: string, exclude: string[] = []) {
    this.root = resolve(root);
    this.run = run;
    this.exclude = new Set(exclude.map((p) => resolve(p)));
    this.current = new ChangeJournal(`${run}:0`);
    this.fd = inotifyInit();
    this.watchTree(ROOT_PATH);
    this.timer = setInterval(() => this.drain(), DRAIN_MS);
    this.timer.unref(); // a journal never keeps the agent alive
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /**
   * The snapshot moment of a sync: every event queued so far goes to the generation being closed,
   * and a new generation starts recording. Returns the closed one (the sync's change record) and
   * the id of the new one (what the tracker state names once the point commits). A broken
   * generation makes the watcher rebuild every watch now, before the sync reads anything.
   */
  rotate(): { previous: ChangeJournal; next: string } {
    this.drain();
    const previous = this.current;
    this.current = new ChangeJournal(`${this.run}:${++this.generation}`);
    if (this.rescan || previous.broken !== undefined) {
      this.rescan = false;
      this.linked = new Set();
      this.watchTree(ROOT_PATH);
    }
    return { previous, next: this.current.id };
  }

  /** A sync was abandoned: its generation's changes go back into the journal. */
  giveBack(previous: ChangeJournal): void {
    this.drain();
    this.current.absorb(previous);
  }

  close(): void {
    if (this.fd < 0) return;
    clearInterval(this.timer);
    closeSync(this.fd);
    this.fd = -1;
  }

  private drain(): void {
    if (this.fd < 0) return;
    let events;
    try {
      events = inotifyReadAll(this.fd, this.buffer);
    } catch (err) {
      this.current.break(`reading inotify events failed (${(err as Error).message})`);
      this.rescan = true;
      return;
    }
    for (const e of events) {
      if (e.mask & IN.Q_OVERFLOW) {
        this.current.break('the inotify event queue overflowed (fs.inotify.max_queued_events); events were lost');
        this.rescan = true;
        continue;
      }
      const dir = this.wds.get(e.wd);
      if (dir === undefined) continue; // a watch removed since the event was queued
      if (e.mask & IN.IGNORED) {
        this.wds.delete(e.wd);
        continue;
      }
      if (e.mask & IN.UNMOUNT) {
        this.current.break(`the file system under ${join(this.root, dir)} was unmounted`);
        this.rescan = true;
        continue;
      }
      if (dir === ROOT_PATH && e.name === '' && e.mask & (IN.MOVE_SELF | IN.DELETE_SELF)) {
        this.current.break(`the source directory ${this.root} was moved or deleted`);
        this.rescan = true;
        continue;
      }
      const path = e.name === '' ? dir : joinEntryPath(dir, e.name);
      if (e.name !== '' && this.exclude.has(join(this.root, path))) continue;
      this.current.touch(path);
      if (e.name !== '' && e.mask & ENTRIES_CHANGED) this.current.touch(dir); // its entries and mtime changed
      if (e.mask & IN.ISDIR && e.mask & (IN.CREATE | IN.MOVED_TO)) {
        this.current.addSubtree(path);
        this.watchTree(path);
      }
    }
  }

  /**
   * Watches a directory and everything below it: each directory's watch is added before it is
   * listed (race-free), and an existing watch learns its new path (a moved directory). Also
   * notes files with several links.
   */
  private watchTree(top: string): void {
    const stack = [top];
    while (stack.length > 0) {
      const rel = stack.pop() as string;
      const abs = rel === ROOT_PATH ? this.root : join(this.root, rel);
      if (this.exclude.has(abs)) continue;
      try {
        this.wds.set(inotifyAddWatch(this.fd, abs, WATCH_MASK), rel);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') continue; // gone again: its parent's event says so
        this.current.break(
          code === 'ENOSPC' ? `the inotify watch limit (fs.inotify.max_user_watches) was reached at ${abs}` : `cannot watch ${abs} (${(err as Error).message})`,
        );
        this.rescan = true;
        continue;
      }
      let listing;
      try {
        listing = listDirStats(abs);
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') {
          this.current.break(`cannot list ${abs} (${(err as Error).message})`);
          this.rescan = true;
        }
        continue;
      }
      listing.names.forEach((name, i) => {
        const mode = listing.stats[i * STAT_FIELDS + STAT.mode] as bigint;
        const child = joinEntryPath(rel, name);
        if ((mode & S_IFMT) === S_IFDIR) stack.push(child);
        else if ((mode & S_IFMT) === S_IFREG && (listing.stats[i * STAT_FIELDS + STAT.nlink] as bigint) > 1n) this.linked.add(child);
      });
    }
  }
}
