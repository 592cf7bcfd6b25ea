/**
 * A protection group's storage policy beyond its schedule: the long-term keep rules that add to
 * its retention range (`--keep-last/hourly/daily/weekly/monthly/yearly`), and its quota — DPM
 * 2007's default allocation per source times a factor, or an explicit size per source. Stored
 * in the control catalog as columns of `groups`, added by a migration here so that the columns
 * live beside the only code that reads them.
 */
import { HoldfastError } from '../core/errors.js';
import { parseSize } from '../core/units.js';
import type { RetentionPolicy } from '../pool/retention.js';
import type { ControlDb, GroupRow } from './control-db.js';

export const KEEP_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type KeepRule = (typeof KEEP_RULES)[number];
export type KeepRules = Partial<Record<KeepRule, number>>;

export interface GroupPolicy {
  keep: KeepRules;
  /** multiplies DPM 2007's default allocation to give each source's quota */
  quotaFactor: number;
  /** an explicit quota per source, instead of the default allocation */
  quotaBytes: number | null;
}

/** What a create or edit request may change; 0 clears a keep rule, 'default' an explicit quota. */
export interface GroupPolicyPatch {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  quotaFactor?: number;
  quota?: string;
}

const PATCH_KEY: Record<KeepRule, keyof GroupPolicyPatch> = {
  last: 'keepLast', hourly: 'keepHourly', daily: 'keepDaily', weekly: 'keepWeekly', monthly: 'keepMonthly', yearly: 'keepYearly',
};

const DEFAULT: GroupPolicy = { keep: {}, quotaFactor: 1, quotaBytes: null };
const DAY_MS = 86_400_000;

export class GroupPolicies {
  constructor(private readonly control: ControlDb) {
    const cols = (control.db.prepare('PRAGMA table_info(groups)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!cols.includes('keep_rules')) control.db.exec('ALTER TABLE groups ADD COLUMN keep_rules TEXT');
    if (!cols.includes('quota_factor')) control.db.exec('ALTER TABLE groups ADD COLUMN quota_factor REAL');
    if (!cols.includes('quota_bytes')) control.db.exec('ALTER TABLE groups ADD COLUMN quota_bytes INTEGER');
  }

  get(group: string): GroupPolicy {
    const r = this.control.db.prepare('SELECT keep_rules, quota_factor, quota_bytes FROM groups WHERE name = ?').get(group) as
      | { keep_rules: string | null; quota_factor: number | null; quota_bytes: number | null }
      | undefined;
    if (!r) return { ...DEFAULT, keep: {} };
    return { keep: r.keep_rules ? (JSON.parse(r.keep_rules) as KeepRules) : {}, quotaFactor: r.quota_factor ?? 1, quotaBytes: r.quota_bytes };
  }

  /** Throws if the patch has a bad value, before anything is created or changed. */
  static check(patch: GroupPolicyPatch): void {
    merge(DEFAULT, patch);
  }

  update(group: string, patch: GroupPolicyPatch): GroupPolicy {
    const { keep, quotaFactor, quotaBytes } = merge(this.get(group), patch);
    this.control.db.prepare('UPDATE groups SET keep_rules = ?, quota_factor = ?, quota_bytes = ? WHERE name = ?').run(JSON.stringify(keep), quotaFactor, quotaBytes, group);
    return { keep, quotaFactor, quotaBytes };
  }

  /** The fields a group view adds. */
  view(group: string): Record<string, unknown> {
    const p = this.get(group);
    return { keep: p.keep, quotaFactor: p.quotaFactor, quotaBytes: p.quotaBytes };
  }
}

function merge(cur: GroupPolicy, patch: GroupPolicyPatch): GroupPolicy {
  const keep: KeepRules = { ...cur.keep };
  for (const rule of KEEP_RULES) {
    const n = patch[PATCH_KEY[rule]] as number | undefined;
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || n < 0) throw new HoldfastError('BAD_ARGUMENT', `--keep-${rule} must be a whole number (0 clears it), not ${n}`);
    if (n === 0) delete keep[rule];
    else keep[rule] = n;
  }
  let { quotaFactor, quotaBytes } = cur;
  if (patch.quotaFactor !== undefined) {
    if (!(patch.quotaFactor > 0 && patch.quotaFactor <= 1000)) throw new HoldfastError('BAD_ARGUMENT', `--quota-factor must be more than 0 and at most 1000, not ${patch.quotaFactor}`);
    quotaFactor = patch.quotaFactor;
  }
  if (patch.quota !== undefined) {
    quotaBytes = patch.quota === 'default' ? null : parseSize(patch.quota);
    if (quotaBytes !== null && quotaBytes <= 0) throw new HoldfastError('BAD_ARGUMENT', `--quota must be more than zero (or 'default'), not '${patch.quota}'`);
  }
  return { keep, quotaFactor, quotaBytes };
}

/**
 * The group's retention as a pool retention policy: the retention range keeps every point within
 * it before the source's newest point (so a source that stopped syncing keeps its last points),
 * and each keep rule adds points beyond it.
 */
export function retentionOf(g: GroupRow, p: GroupPolicy): RetentionPolicy {
  return { within: g.retainMs, ...p.keep };
}

/** Retention in whole days (at least one), as DPM's allocation formula counts it. */
export function retentionDays(g: GroupRow): number {
  return Math.max(1, Math.ceil(g.retainMs / DAY_MS));
}
