/**
 * "Previous versions" over the file-version index: keeps the index caught up with the pool's
 * catalog (backfill and new commits are the same path), expands a path's versions into the live
 * recovery points it appears in, and decides per point what a portal user may see: read on the
 * entry and search on every directory above it, per the owner, mode and ACL recorded then.
 */
import { readManifest } from '../core/manifest-io.js';
import { sameChunkRefs } from '../core/manifest.js';
import { ROOT_PATH } from '../core/entry-path.js';
import type { Pool } from '../pool/pool.js';
import { canCreate, canRead, canSearch, type Principal } from './file-access.js';
import { VersionIndex, type IndexedPoint, type VersionRow } from './version-index.js';

export interface PointVersion {
  point: string;
  time: string;
  type: string;
  size: number;
  mtimeNs: string;
  mode: number;
  uid: number;
  gid: number;
  /** content differs from the previous point listed (true for the first) */
  changed: boolean;
}

export interface Log {
  warn(obj: object, msg: string): void;
}

/** The parent directories of a manifest path, the root first. */
export function ancestors(path: string): string[] {
  if (path === ROOT_PATH) return [];
  const parts = path.split('/');
  const out = [ROOT_PATH];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/** What one search looks up again and again: each source's live points, each directory's versions. */
interface SearchCache {
  points: Map<string, IndexedPoint[]>;
  dirs: Map<string, VersionRow[]>;
}

const covering = (versions: VersionRow[], seq: number): VersionRow | undefined => versions.find((v) => v.first <= seq && (v.last === null || seq <= v.last));

export class FileVersions {
  private running: Promise<void> | undefined;
  /** points may exist that are not indexed (at start, and after each commit) */
  private dirty = true;
  private readonly stopping = new AbortController();

  constructor(
    readonly index: VersionIndex,
    private readonly pool: Pool,
    private readonly log: Log,
  ) {}

  /** A point was committed: index it in the background (queries wait for it). */
  kick(): void {
    if (this.stopping.signal.aborted) return;
    this.dirty = true;
    this.catchUp().catch((err: unknown) => this.log.warn({ err }, 'file-version index: catch-up failed'));
  }

  /** Waits until the index holds every point committed so far. */
  async ready(): Promise<void> {
    if (this.dirty || this.running) await this.catchUp();
  }

  /** Indexes every committed point not yet indexed; concurrent calls share one run. */
  catchUp(): Promise<void> {
    if (this.running) return this.running;
    const run = async (): Promise<void> => {
      do {
        this.dirty = false;
        await this.indexMissing();
      } while (this.dirty && !this.stopping.signal.aborted);
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async indexMissing(): Promise<void> {
    for (const s of this.pool.catalog.sources()) {
      if (s.kind !== 'dir') continue;
      const last = this.index.lastPoint(s.name);
      // Heads first (every commit runs this for every source): only new points' rows are read.
      const todo = this.pool.catalog.pointHeads(s.name, last?.time);
      if (todo.length === 0) continue;
      // the manifest of the last indexed point: an identical one (an unchanged sync) is not read
      let prev = last && this.pool.catalog.point(last.point)?.manifest;
      for (const h of todo) {
        if (this.stopping.signal.aborted) return;
        if (this.index.isIndexed(h.id) || !this.pool.catalog.pointExists(h.id)) continue;
        const p = this.pool.catalog.point(h.id);
        if (!p) continue;
        try {
          if (prev && sameChunkRefs(prev, p.manifest)) this.index.indexUnchanged(s.name, { id: p.id, time: p.time });
          else await this.index.indexPoint(s.name, { id: p.id, time: p.time }, readManifest(this.pool.reader, p.manifest, this.stopping.signal));
          prev = p.manifest;
        } catch (err) {
          if (this.stopping.signal.aborted) return;
          // Left for the next run: a point being deleted, or damage that verify will report.
          this.log.warn({ err, point: p.id, source: s.name }, 'file-version index: cannot index recovery point');
          break;
        }
      }
    }
  }

  /** Stops indexing (the current point's transaction is not written) and waits for it. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.running?.catch(() => undefined);
  }

  /** The live points a path appears in, with its version there; only those `who` could read when given. */
  async pointVersions(source: string, path: string, who?: Principal): Promise<PointVersion[]> {
    await this.ready();
    return this.versionsFor(source, path, who);
  }

  /** A source's indexed points that are still in the catalog, in order (cached for one query). */
  private livePoints(source: string, cache?: SearchCache): IndexedPoint[] {
    let list = cache?.points.get(source);
    if (!list) {
      const live = new Set(this.pool.catalog.pointHeads(source).map((p) => p.id));
      list = this.index.points(source).filter((p) => live.has(p.point));
      cache?.points.set(source, list);
    }
    return list;
  }

  /**
   * `listing`: the path is being discovered (a search), not named: its directory must also have
   * been readable then, as `ls` needs; a name in a search-only (--x) directory stays unlisted.
   */
  private versionsFor(source: string, path: string, who?: Principal, cache?: SearchCache, listing = false, pathId?: number): PointVersion[] {
    const id = pathId ?? this.index.pathId(source, path);
    if (id === undefined) return [];
    const versions = this.index.versions(id);
    const parents = who ? ancestors(path).map((a) => this.versionsOfPath(source, a, cache)) : [];
    const out: PointVersion[] = [];
    let prevHash: string | null | undefined;
    for (const p of this.livePoints(source, cache)) {
      const v = covering(versions, p.seq);
      if (!v) continue;
      if (who && !(canRead(v, who) && parents.every((vs) => canSearchAt(vs, p.seq, who)))) continue;
      if (who && listing && !canReadAt(parents[parents.length - 1], p.seq, who)) continue;
      out.push({ point: p.point, time: p.time, type: v.type, size: v.size, mtimeNs: v.mtimeNs, mode: v.mode, uid: v.uid, gid: v.gid, changed: prevHash === undefined || v.hash !== prevHash });
      prevHash = v.hash;
    }
    return out;
  }

  private versionsOfPath(source: string, path: string, cache?: SearchCache): VersionRow[] {
    const key = `${source}\0${path}`;
    let rows = cache?.dirs.get(key);
    if (!rows) {
      const id = this.index.pathId(source, path);
      rows = id === undefined ? [] : this.index.versions(id);
      cache?.dirs.set(key, rows);
    }
    return rows;
  }

  /** Whether `who` could read the path at one point (read on it, search on its parents). */
  async readableAt(source: string, path: string, point: string, who: Principal): Promise<boolean> {
    return (await this.pointVersions(source, path, who)).some((v) => v.point === point);
  }

  /**
   * Paths matching the text that `who` could read in at least one live point (all for an
   * administrator). Candidates are read a page at a time until `limit` are visible or `budgetMs`
   * has passed: a time bound, not a candidate count, so matches a user may not read (however many
   * sort first) do not hide theirs, and a search still cannot run forever.
   */
  async search(sources: string[], text: string, who: Principal | undefined, limit = 50, budgetMs = 2000): Promise<Array<{ source: string; path: string; versions: PointVersion[] }>> {
    await this.ready();
    const out: Array<{ source: string; path: string; versions: PointVersion[] }> = [];
    const PAGE = 200;
    const cache: SearchCache = { points: new Map(), dirs: new Map() };
    const deadline = Date.now() + budgetMs;
    let after: { source: string; path: string } | undefined;
    while (out.length < limit && Date.now() < deadline) {
      const page = this.index.search(sources, text, PAGE, after);
      for (const c of page) {
        const versions = this.versionsFor(c.source, c.path, who, cache, true, c.id);
        if (versions.length > 0) out.push({ source: c.source, path: c.path, versions });
        if (out.length >= limit) break;
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1];
    }
    return out;
  }

  /**
   * Whether `who` may create a file in a directory of the source as it was at the newest live
   * point that holds it: write and search on it, search on every directory above it. A portal
   * restore writes beside the original only where the user could have written the copy themselves.
   */
  async canCreateIn(source: string, dir: string, who: Principal): Promise<boolean> {
    await this.ready();
    const points = this.livePoints(source);
    const latest = points[points.length - 1];
    if (!latest) return false;
    const v = covering(this.versionsOfPath(source, dir), latest.seq);
    if (!v || v.type !== 'dir' || !canCreate(v, who)) return false;
    return ancestors(dir).every((a) => canSearchAt(this.versionsOfPath(source, a), latest.seq, who));
  }
}

function canReadAt(versions: VersionRow[] | undefined, seq: number, who: Principal): boolean {
  if (!versions) return true; // the source's root: its parent is not recorded
  const v = covering(versions, seq);
  return v !== undefined && canRead(v, who);
}

function canSearchAt(versions: VersionRow[], seq: number, who: Principal): boolean {
  const v = covering(versions, seq);
  return v !== undefined && v.type === 'dir' && canSearch(v, who);
}
