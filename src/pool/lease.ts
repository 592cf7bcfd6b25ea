/**
 * A write session's lease: a catalog row saying "a session started at this time is running and
 * may still commit chunks it was told the pool has, or chunks it wrote since". gc condemns
 * unreferenced chunks only in packs older than the oldest live lease (docs/design.md).
 *
 * The lease is renewed while the session runs and released when it ends. A lease not renewed for
 * LEASE_TTL_MS belongs to a dead process; gc reaps it. A session whose lease was reaped may no
 * longer commit (the commit check refuses it with RETRY), so a stalled process can never commit
 * chunks gc was allowed to delete.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Catalog } from './catalog.js';

/** A lease not renewed for this long is dead. */
export const LEASE_TTL_MS = 10 * 60_000;
const RENEW_EVERY_MS = 30_000;
/** How soon a failed release is tried again. */
export const RELEASE_RETRY_MS = 1000;

/**
 * Leases this process released whose rows the catalog has not let go of yet: their sessions are
 * over whatever the rows say, and gc in this process (a server's) does not wait for them.
 */
const releasing = new Set<string>();

/** Whether this process released the lease `id` (its row may linger while a deletion is retried). */
export function releasedHere(id: string): boolean {
  return releasing.has(id);
}

export class Lease {
  readonly id = randomBytes(8).toString('hex');
  readonly started: number;
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  /** when the row was last written: it expires LEASE_TTL_MS later */
  private renewed: number;
  /** set when a renewal found the row gone */
  lost = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly onLost: () => void,
  ) {
    this.started = this.renewed = Date.now();
    catalog.addLease({ id: this.id, pid: process.pid, host: hostname(), started: this.started, renewed: this.started });
    // unref: a lease must never keep a finished CLI process alive.
    this.timer = setInterval(() => this.renew(), RENEW_EVERY_MS).unref();
  }

  renew(): void {
    if (this.released || this.lost) return;
    try {
      const now = Date.now();
      if (this.catalog.renewLease(this.id, now)) this.renewed = now;
      else {
        this.lost = true;
        this.stopTimer();
        this.onLost();
      }
    } catch {
      // a busy catalog: the next renewal tries again, well within the TTL
    }
  }

  /**
   * Whether the session may still commit: not released (a row that lingers after a refused
   * deletion does not count, gc no longer waits for it) and the row is there (the commit
   * transaction asks, so gc cannot reap it in between).
   */
  valid(): boolean {
    return !this.released && !this.lost && this.catalog.leaseExists(this.id);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.stopTimer();
    this.dropRow();
  }

  /**
   * Deletes the row, trying again while it fails: on a full pool SQLite cannot write even a
   * deletion, and a row left behind holds gc back until it expires, when gc is what makes room.
   * Only SQLite's own refusals are tried again (a closed catalog will not get better), and only
   * until the row has expired anyway.
   */
  private dropRow(): void {
    try {
      this.catalog.releaseLease(this.id);
      releasing.delete(this.id);
    } catch (err) {
      releasing.add(this.id);
      const code = (err as { code?: unknown }).code;
      const sqlite = typeof code === 'string' && code.startsWith('SQLITE_');
      const expires = this.renewed + LEASE_TTL_MS;
      if (sqlite && Date.now() < expires) setTimeout(() => this.dropRow(), RELEASE_RETRY_MS).unref();
      // No more tries: once the row has expired gc's own filter drops it, and so does this set.
      else setTimeout(() => releasing.delete(this.id), Math.max(0, expires - Date.now())).unref();
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * True when a lease or lock holder is known to be dead: a process on this host that no longer
 * exists. Another host's holder is never known dead; its row expires after LEASE_TTL_MS.
 */
export function holderGone(host: string, pid: number): boolean {
  if (host !== hostname() || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
