/**
 * Storage allocation on the server: the pool's file system (capacity, used, free) and, per
 * protection group and per source, logical bytes, unique bytes (stored bytes of chunks only it
 * needs: what removing it would free after gc) and shared bytes (stored bytes of chunks it needs
 * together with others), plus each source's quota: DPM 2007's default allocation for its data
 * size and its group's retention days, times the group's factor, or the group's explicit size.
 * A source's stored bytes (unique + shared) are what it is held against its quota. A source needs
 * the chunks of its points and of its log records (a database's shipped WAL), as gc's mark does.
 *
 * One pass over every manifest and log record, like gc's mark; it reads and never changes the pool.
 */
import { statfs } from 'node:fs/promises';
import { forEachPointChunk } from '../pool/point-digests.js';
import type { PageSpan } from '../core/manifest-io.js';
import { defaultAllocation, type Allocation } from '../pool/allocation.js';
import type { Pool } from '../pool/pool.js';
import type { ControlDb } from './control-db.js';
import { retentionDays, type GroupPolicies } from './group-policy.js';

export interface SourceStorage {
  source: string;
  group: string | null;
  points: number;
  latestLogicalBytes: number;
  allLogicalBytes: number;
  uniqueBytes: number;
  sharedBytes: number;
  /** unique + shared: the stored bytes of every chunk its points and log records need */
  storedBytes: number;
  defaultAllocation: Allocation;
  quotaBytes: number | null;
  quotaFrom: 'default' | 'explicit' | null;
}

export interface GroupStorage {
  group: string;
  sources: number;
  retentionDays: number;
  quotaFactor: number;
  latestLogicalBytes: number;
  /** stored bytes of chunks only this group's sources need */
  uniqueBytes: number;
  /** stored bytes of chunks this group's sources share with other groups */
  sharedBytes: number;
  storedBytes: number;
  quotaBytes: number;
}

export interface ServerStorage {
  time: string;
  pool: {
    capacityBytes: number;
    usedBytes: number;
    freeBytes: number;
    /** pack bytes */
    storedBytes: number;
    packs: number;
    /** stored bytes of every chunk some point or log record needs, each counted once */
    referencedBytes: number;
    /** indexed chunk bytes no point or log record needs (gc frees them) */
    unreferencedBytes: number;
  };
  groups: GroupStorage[];
  sources: SourceStorage[];
}

export async function serverStorage(pool: Pool, control: ControlDb, policies: GroupPolicies, signal?: AbortSignal): Promise<ServerStorage> {
  const fs = await statfs(pool.dir);
  const groupOf = new Map(control.sources().map((s) => [s.name, s.group]));
  const groups = control.groups();
  const logs = pool.catalog.allLogs();
  const names = pool.catalog.sources().map((s) => s.name);
  for (const s of [...groupOf.keys(), ...new Set(logs.map((l) => l.source))]) if (!names.includes(s)) names.push(s);
  // digest -> the one source index that needs it, or the set of them
  const owners = new Map<string, number | Set<number>>();
  const need = (d: string, i: number): void => {
    const cur = owners.get(d);
    if (cur === undefined) owners.set(d, i);
    else if (typeof cur === 'number') {
      if (cur !== i) owners.set(d, new Set([cur, i]));
    } else cur.add(i);
  };
  const rows: SourceStorage[] = [];
  for (const [i, name] of names.entries()) {
    const points = pool.catalog.points(name);
    const latest = points.at(-1);
    const gname = groupOf.get(name) ?? null;
    const g = gname === null ? undefined : groups.find((x) => x.name === gname);
    const policy = g && policies.get(g.name);
    const alloc = defaultAllocation(latest?.logicalBytes ?? 0, g ? retentionDays(g) : 1);
    rows.push({
      source: name,
      group: gname,
      points: points.length,
      latestLogicalBytes: latest?.logicalBytes ?? 0,
      allLogicalBytes: points.reduce((n, p) => n + p.logicalBytes, 0),
      uniqueBytes: 0,
      sharedBytes: 0,
      storedBytes: 0,
      defaultAllocation: alloc,
      quotaBytes: policy ? (policy.quotaBytes ?? Math.ceil(alloc.totalBytes * policy.quotaFactor)) : null,
      quotaFrom: policy ? (policy.quotaBytes !== null ? 'explicit' : 'default') : null,
    });
    // need() is idempotent per source: a page this source's earlier points had is not read again.
    const seen = new Map<string, PageSpan>();
    for (const p of points) await forEachPointChunk(pool.reader, p.manifest, (d) => need(d, i), signal, seen);
  }
  const rowOf = new Map(names.map((n, i) => [n, i]));
  for (const l of logs) for (const [d] of l.manifest) need(d, rowOf.get(l.source) as number);
  const groupRows = new Map<string, GroupStorage>(
    groups.map((g) => [
      g.name,
      { group: g.name, sources: 0, retentionDays: retentionDays(g), quotaFactor: policies.get(g.name).quotaFactor, latestLogicalBytes: 0, uniqueBytes: 0, sharedBytes: 0, storedBytes: 0, quotaBytes: 0 },
    ]),
  );
  for (const r of rows) {
    const gr = r.group === null ? undefined : groupRows.get(r.group);
    if (!gr) continue;
    gr.sources++;
    gr.latestLogicalBytes += r.latestLogicalBytes;
    gr.quotaBytes += r.quotaBytes ?? 0;
  }
  let referenced = 0;
  for (const [d, who] of owners) {
    const stored = pool.index.get(d)?.storedLength ?? 0;
    referenced += stored;
    if (typeof who === 'number') {
      (rows[who] as SourceStorage).uniqueBytes += stored;
      const gr = groupRows.get((rows[who] as SourceStorage).group ?? '');
      if (gr) gr.uniqueBytes += stored;
      continue;
    }
    const inGroups = new Set<string>();
    for (const j of who) {
      const r = rows[j] as SourceStorage;
      r.sharedBytes += stored;
      inGroups.add(r.group ?? '');
    }
    // Shared by sources of one group only: unique to that group.
    for (const gname of inGroups) {
      const gr = groupRows.get(gname);
      if (gr) gr[inGroups.size === 1 ? 'uniqueBytes' : 'sharedBytes'] += stored;
    }
  }
  for (const r of rows) r.storedBytes = r.uniqueBytes + r.sharedBytes;
  for (const g of groupRows.values()) g.storedBytes = g.uniqueBytes + g.sharedBytes;
  let chunkBytes = 0;
  for (const [, loc] of pool.index.entries()) chunkBytes += loc.storedLength;
  const packs = await pool.storedBytes();
  return {
    time: new Date().toISOString(),
    pool: {
      capacityBytes: fs.blocks * fs.bsize,
      usedBytes: (fs.blocks - fs.bfree) * fs.bsize,
      freeBytes: fs.bavail * fs.bsize,
      storedBytes: packs.bytes,
      packs: packs.packs,
      referencedBytes: referenced,
      unreferencedBytes: Math.max(0, chunkBytes - referenced),
    },
    groups: [...groupRows.values()],
    sources: rows,
  };
}
