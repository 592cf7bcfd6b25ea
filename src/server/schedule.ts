/**
 * Pure schedule arithmetic: when a group's recovery point times last fell due, and whether a
 * source's newest recovery point is as recent as its schedule promises (its recovery point
 * objective). Times of day are in the server's local time zone, as an administrator reads them.
 */
import type { GroupRow } from './control-db.js';

const DAY = 86_400_000;

/** The latest scheduled point time (HH:MM, today or yesterday) at or before `now`, or undefined. */
export function lastSlot(points: string[], now: Date): Date | undefined {
  let best: Date | undefined;
  for (const back of [0, 1]) {
    for (const t of points) {
      const [h, m] = t.split(':').map(Number) as [number, number];
      const d = new Date(now.getTime() - back * DAY);
      d.setHours(h, m, 0, 0);
      if (d.getTime() <= now.getTime() && (!best || d > best)) best = d;
    }
  }
  return best;
}

/** Kinds whose logs ship at the group's frequency between express fulls (archive_timeout, the SQLite shipper). */
const DATABASE_KINDS = new Set(['postgres', 'sqlite']);

/**
 * How often a source syncs by the clock, as DPM does it: a file or image source at the group's
 * frequency; a database source ships its logs at that frequency instead and takes an express full
 * only at the group's point times, or once a day when it has none (an express full reads the whole
 * cluster; back to back they would also hold up every restore). Null: not by the clock.
 */
export function syncIntervalMs(kind: string, g: Pick<GroupRow, 'syncEveryMs' | 'points'>): number | null {
  if (!DATABASE_KINDS.has(kind)) return g.syncEveryMs;
  return g.syncEveryMs && g.points.length === 0 ? DAY : null;
}

/** The group as a source of `kind` follows it: its clock-driven syncs (see syncIntervalMs). */
export function scheduleFor(kind: string, g: GroupRow): GroupRow {
  return { ...g, syncEveryMs: syncIntervalMs(kind, g) };
}

/** How late a point may be before the objective counts as missed: a sync takes time. */
export function graceMs(g: GroupRow): number {
  return Math.max(10_000, Math.min(30 * 60_000, (g.syncEveryMs ?? 15 * 60_000) * 2));
}

export interface RpoState {
  compliant: boolean;
  /** the newest recovery point must be at least this recent */
  due: string | undefined;
  reason?: string;
}

/**
 * The objective: a point no older than one sync interval, and none older than the latest
 * scheduled point time — each with the grace above. A source is judged only after its first
 * objective could have been met.
 */
export function rpoState(g: GroupRow, created: Date, latestPoint: Date | undefined, now: Date): RpoState {
  const grace = graceMs(g);
  let due: number | undefined;
  if (g.syncEveryMs) due = now.getTime() - g.syncEveryMs - grace;
  const slot = lastSlot(g.points, new Date(now.getTime() - grace));
  if (slot) due = Math.max(due ?? 0, slot.getTime());
  if (due === undefined || due < created.getTime()) return { compliant: true, due: undefined };
  const ok = latestPoint !== undefined && latestPoint.getTime() >= due;
  return {
    compliant: ok,
    due: new Date(due).toISOString(),
    reason: ok ? undefined : latestPoint ? `newest recovery point ${latestPoint.toISOString()} is older than ${new Date(due).toISOString()}` : 'no recovery point yet',
  };
}
