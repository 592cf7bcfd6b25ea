/**
 * Pool usage over time for the console's storage charts: a sample (pack bytes in the pool, and
 * per protection group its sources' latest logical bytes and the stored bytes its points
 * brought) is recorded in the control catalog at start, after syncs (at most once a minute) and
 * every ten minutes; samples older than a year are dropped.
 */
import type Database from 'better-sqlite3';
import type { Catalog } from '../pool/catalog.js';
import type { Pool } from '../pool/pool.js';
import type { ControlDb } from './control-db.js';

/** What a sample reads from the pool. */
export type UsagePool = Pick<Pool, 'storedBytes'> & { catalog: Pick<Catalog, 'pointSpan' | 'latestPointHead'> };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_samples (time TEXT PRIMARY KEY, stored_bytes INTEGER NOT NULL, packs INTEGER NOT NULL, groups TEXT NOT NULL);
`;

export interface GroupUsage {
  group: string;
  sources: number;
  points: number;
  latestLogicalBytes: number;
  storedNewBytes: number;
}

export interface UsageSample {
  time: string;
  storedBytes: number;
  packs: number;
  groups: GroupUsage[];
}

const EVERY_MS = 10 * 60 * 1000;
const MIN_GAP_MS = 60 * 1000;
const KEEP_MS = 366 * 24 * 3600 * 1000;

export class UsageSamples {
  private readonly db: Database.Database;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private busy = false;

  constructor(
    private readonly control: ControlDb,
    private readonly pool: UsagePool,
    private readonly log: { warn(obj: object, msg: string): void },
    /** milliseconds since the epoch (tests step it) */
    private readonly clock: () => number = Date.now,
  ) {
    this.db = control.db;
    this.db.exec(SCHEMA);
  }

  start(): void {
    this.timer = setInterval(() => this.take(true), EVERY_MS);
    this.timer.unref();
    this.take(true);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Records a sample in the background (unless one was taken within the last minute). */
  take(force = false): void {
    if (this.busy || (!force && this.clock() - this.last < MIN_GAP_MS)) return;
    this.busy = true;
    this.last = this.clock();
    this.record()
      .catch((err: unknown) => this.log.warn({ err }, 'usage sample failed'))
      .finally(() => {
        this.busy = false;
      });
  }

  async record(now = new Date(this.clock())): Promise<UsageSample> {
    const sample = await this.measure(now);
    this.db.prepare('INSERT OR REPLACE INTO usage_samples (time, stored_bytes, packs, groups) VALUES (?, ?, ?, ?)').run(sample.time, sample.storedBytes, sample.packs, JSON.stringify(sample.groups));
    this.db.prepare('DELETE FROM usage_samples WHERE time < ?').run(new Date(now.getTime() - KEEP_MS).toISOString());
    return sample;
  }

  /** The figures now, not recorded. */
  async measure(now = new Date(this.clock())): Promise<UsageSample> {
    const stored = await this.pool.storedBytes();
    const groups = new Map<string, GroupUsage>();
    for (const g of this.control.groups()) groups.set(g.name, { group: g.name, sources: 0, points: 0, latestLogicalBytes: 0, storedNewBytes: 0 });
    for (const s of this.control.sources()) {
      const g = groups.get(s.group);
      if (!g) continue;
      // Aggregates, not the rows: a sample follows every commit, and rows carry manifest lists.
      const span = this.pool.catalog.pointSpan(s.name);
      g.sources++;
      g.points += span?.count ?? 0;
      g.latestLogicalBytes += this.pool.catalog.latestPointHead(s.name)?.logicalBytes ?? 0;
      g.storedNewBytes += span?.storedNewBytes ?? 0;
    }
    return { time: now.toISOString(), storedBytes: stored.bytes, packs: stored.packs, groups: [...groups.values()] };
  }

  samples(since?: string): UsageSample[] {
    const rows = this.db.prepare('SELECT * FROM usage_samples WHERE time >= ? ORDER BY time').all(since ?? '') as Array<Record<string, unknown>>;
    return rows.map((r) => ({ time: r.time as string, storedBytes: r.stored_bytes as number, packs: r.packs as number, groups: JSON.parse(r.groups as string) as GroupUsage[] }));
  }
}
