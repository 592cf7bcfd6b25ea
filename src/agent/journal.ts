/**
 * One generation of a dir source's change journal: the set of paths that changed since the
 * generation started, like DPM's in-memory bitmap — a path written a thousand times is one
 * entry, so the footprint is bounded by the number of changed paths, not by the number of
 * writes. No operation is logged or replayed: a sync only needs to know where to look.
 *
 * A generation starts at a sync's snapshot moment (`JournalWatcher.rotate()`); the next sync may
 * trust it only if it is the generation the tracker state names and nothing broke it (an
 * inotify queue overflow, a watch limit, the source root moved away).
 */

export class ChangeJournal {
  /** paths (relative, manifest form) whose object or, for a directory, whose entries changed */
  readonly paths = new Set<string>();
  /** directories that appeared (created or moved in): everything under them is new to the journal */
  readonly subtrees = new Set<string>();
  /** why this generation cannot be trusted; undefined while it is whole */
  broken?: string;

  constructor(
    /** `<watcher run>:<generation>`: names the moment this generation started recording */
    public id: string,
  ) {}

  touch(path: string): void {
    this.paths.add(path);
  }

  addSubtree(path: string): void {
    this.subtrees.add(path);
  }

  /** Marks the generation untrustworthy; the first reason is kept (it is the one that lost events). */
  break(why: string): void {
    this.broken ??= why;
  }

  /**
   * Takes in an older generation whose sync was abandoned: this journal then covers everything
   * since the older one started, and carries its id (the tracker state still names it).
   */
  absorb(older: ChangeJournal): void {
    for (const p of older.paths) this.paths.add(p);
    for (const p of older.subtrees) this.subtrees.add(p);
    if (older.broken !== undefined) this.break(older.broken);
    this.id = older.id;
  }
}
