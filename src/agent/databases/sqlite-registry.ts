/**
 * The agent process's SQLite shippers, one per source (like the change journals of dir
 * sources): the daemon starts them, and a sync of the source takes its snapshot through the
 * source's shipper so that the snapshot contains every frame shipped before it.
 */
import { SqliteShipper, type SqliteShipperOptions } from './sqlite-shipper.js';

export interface ShipperRun {
  shipper: SqliteShipper;
  path: string;
  stop(): Promise<void>;
}

class SqliteShippers {
  private readonly runs = new Map<string, ShipperRun>();

  get(source: string, path: string): SqliteShipper | undefined {
    const r = this.runs.get(source);
    return r && r.path === path ? r.shipper : undefined;
  }

  has(source: string): boolean {
    return this.runs.has(source);
  }

  /**
   * Starts polling: `intervalMs` between the end of one poll and the start of the next. A failed
   * poll (server unreachable, database locked) is reported and retried at the next tick.
   */
  start(o: SqliteShipperOptions, h: { intervalMs: () => number; onError: (err: Error) => void; onPoll?: () => void }): ShipperRun {
    const old = this.runs.get(o.source);
    if (old && old.path === o.path) return old;
    if (old) void old.stop();
    const shipper = new SqliteShipper(o);
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let current: Promise<unknown> = Promise.resolve();
    const tick = (): void => {
      current = shipper
        .poll()
        .then(() => h.onPoll?.())
        .catch((err: unknown) => h.onError(err instanceof Error ? err : new Error(String(err))))
        .finally(() => {
          if (!stopped) timer = setTimeout(tick, h.intervalMs());
        });
    };
    const run: ShipperRun = {
      shipper,
      path: o.path,
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await current;
        await shipper.close();
        if (this.runs.get(o.source) === run) this.runs.delete(o.source);
      },
    };
    this.runs.set(o.source, run);
    tick();
    return run;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.runs.values()].map((r) => r.stop()));
  }
}

export const sqliteShippers = new SqliteShippers();
