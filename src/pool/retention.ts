/**
 * Retention: which recovery points of one source a policy keeps. Pure functions, no I/O.
 *
 * Semantics follow restic's `forget`: `within` keeps every point no older than that span before
 * the source's newest point (not before now, so a source that stopped syncing keeps its last
 * points); `last` keeps the newest N; `hourly`/`daily`/`weekly`/`monthly`/`yearly` keep the newest
 * point of each of the last N hours/days/ISO weeks/months/years that have points (UTC). A point
 * is kept if any rule keeps it; pinned points are always kept. A policy must have a rule: an empty
 * one would remove everything.
 */
import { HoldfastError } from '../core/errors.js';

export interface RetentionPolicy {
  /** milliseconds before the newest point */
  within?: number;
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export interface RetentionPoint {
  id: string;
  /** ISO 8601 */
  time: string;
  pinned?: boolean;
}

export interface RetentionDecision<P extends RetentionPoint> {
  keep: Array<{ point: P; reasons: string[] }>;
  remove: P[];
}

const BUCKETS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type Bucket = (typeof BUCKETS)[number];

/** The calendar bucket (UTC) a time falls in, for one rule. */
export function bucketOf(rule: Bucket, t: Date): string {
  const iso = t.toISOString();
  switch (rule) {
    case 'hourly':
      return iso.slice(0, 13);
    case 'daily':
      return iso.slice(0, 10);
    case 'monthly':
      return iso.slice(0, 7);
    case 'yearly':
      return iso.slice(0, 4);
    case 'weekly': {
      // ISO 8601 week: the week with the year's first Thursday is week 1.
      const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
      const day = d.getUTCDay() || 7;
      d.setUTCDate(d.getUTCDate() + 4 - day);
      const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
      const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
      return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
    }
  }
}

export function checkPolicy(p: RetentionPolicy): void {
  const counts = (['last', ...BUCKETS] as const).map((k) => [k, p[k]] as const);
  for (const [k, n] of counts) {
    if (n !== undefined && !(Number.isSafeInteger(n) && n >= 1)) throw new HoldfastError('BAD_ARGUMENT', `--keep-${k} must be a whole number of at least 1, not ${n}`);
  }
  if (p.within !== undefined && !(p.within > 0)) throw new HoldfastError('BAD_ARGUMENT', '--keep-within must be a positive duration');
  if (p.within === undefined && counts.every(([, n]) => n === undefined)) {
    throw new HoldfastError('BAD_ARGUMENT', 'a retention policy needs at least one rule (--keep-within, --keep-last, --keep-daily, ...): an empty one would remove every recovery point');
  }
}

/** Applies a policy to the points of one source (any order); the result lists newest first. */
export function applyRetention<P extends RetentionPoint>(points: P[], policy: RetentionPolicy): RetentionDecision<P> {
  checkPolicy(policy);
  const sorted = [...points].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.id < b.id ? 1 : -1));
  const reasons = new Map<P, string[]>(sorted.map((p) => [p, []]));
  const keep = (p: P, why: string): void => void (reasons.get(p) as string[]).push(why);
  const newest = sorted[0] ? Date.parse(sorted[0].time) : 0;
  sorted.forEach((p, i) => {
    if (p.pinned) keep(p, 'pinned');
    if (policy.last !== undefined && i < policy.last) keep(p, 'last');
    if (policy.within !== undefined && newest - Date.parse(p.time) <= policy.within) keep(p, 'within');
  });
  for (const rule of BUCKETS) {
    const n = policy[rule];
    if (n === undefined) continue;
    let last: string | undefined;
    let count = 0;
    for (const p of sorted) {
      if (count >= n) break;
      const b = bucketOf(rule, new Date(p.time));
      if (b === last) continue;
      last = b;
      count++;
      keep(p, `${rule} ${b}`);
    }
  }
  const out: RetentionDecision<P> = { keep: [], remove: [] };
  for (const p of sorted) {
    const why = reasons.get(p) as string[];
    if (why.length > 0) out.keep.push({ point: p, reasons: why });
    else out.remove.push(p);
  }
  return out;
}
