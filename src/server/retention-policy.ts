/**
 * Pruning by protection group: each source's points are judged by its group's retention range
 * and keep rules (group-policy.ts) with the pool's retention semantics (pool/retention.ts);
 * pinned points are always kept, and a database's log records go only with the points that
 * needed them (pool/log-chain.ts). Removing a point only drops its catalog row and point file;
 * gc gives its space back later.
 */
import { HoldfastError } from '../core/errors.js';
import { prunePoints, type PruneResult } from '../pool/point-admin.js';
import type { RetentionPolicy } from '../pool/retention.js';
import type { Pool } from '../pool/pool.js';
import type { ControlDb } from './control-db.js';
import { retentionOf, type GroupPolicies } from './group-policy.js';

export interface GroupPruneResult {
  dryRun: boolean;
  groups: Array<{ group: string; policy: RetentionPolicy; sources: PruneResult['sources'] }>;
  removed: number;
  kept: number;
  /** database log records no kept point needs (with dryRun: would remove), and their bytes */
  logsRemoved: number;
  logBytesRemoved: number;
}

export async function pruneGroups(
  pool: Pool,
  control: ControlDb,
  policies: GroupPolicies,
  o: { group?: string; source?: string; dryRun?: boolean } = {},
): Promise<GroupPruneResult> {
  if (o.group !== undefined && !control.group(o.group)) throw new HoldfastError('NOT_FOUND', `no protection group named '${o.group}'`, { group: o.group });
  const out: GroupPruneResult = { dryRun: o.dryRun === true, groups: [], removed: 0, kept: 0, logsRemoved: 0, logBytesRemoved: 0 };
  const sources = control.sources();
  for (const g of control.groups()) {
    if (o.group !== undefined && g.name !== o.group) continue;
    const policy = retentionOf(g, policies.get(g.name));
    const entry: GroupPruneResult['groups'][number] = { group: g.name, policy, sources: [] };
    for (const s of sources) {
      if (s.group !== g.name || (o.source !== undefined && s.name !== o.source)) continue;
      if (!pool.catalog.source(s.name)) continue; // never synced: nothing to judge
      const r = await prunePoints(pool, policy, { source: s.name, dryRun: o.dryRun });
      entry.sources.push(...r.sources);
      out.removed += r.removed;
      out.kept += r.kept;
      out.logsRemoved += r.logsRemoved;
      out.logBytesRemoved += r.logBytesRemoved;
    }
    out.groups.push(entry);
  }
  return out;
}
