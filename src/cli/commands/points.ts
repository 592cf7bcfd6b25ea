/** holdfast points (--pool DIR | --server URL) [--source NAME] [--json] */
import type { Command } from 'commander';
import { formatBytes } from '../../core/units.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';
import { HoldfastError } from '../../core/errors.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';

export function registerPoints(program: Command): void {
  const cmd = program
    .command('points')
    .description('list recovery points, of a local storage pool (--pool) or a protection server (--server)')
    .option('--pool <dir>', 'storage pool directory')
    .option('--source <name>', 'only this source (required with --server)')
    .option('--json', 'machine-readable output');
  addServerOptions(cmd).action(async (opts: ServerOpts & { pool?: string; source?: string; json?: boolean }) => {
      if (!opts.pool) {
        if (!opts.source) throw new HoldfastError('BAD_ARGUMENT', 'points from a server need --source NAME (or give --pool DIR for a local pool)');
        const source = opts.source;
        await withServer(opts, async (c) => {
          const points = await c.json<PointView[]>('GET', `/api/v1/sources/${encodeURIComponent(source)}/points`);
          show(points, opts.json === true);
        });
        return;
      }
      await withPool(opts.pool, (pool) => {
        if (opts.source) pool.requireSource(opts.source);
        const verified = new Map(pool.catalog.verifications().map((v) => [v.point, { time: v.time, full: v.full, ok: v.ok, detail: v.detail }]));
        const points = pool.catalog.points(opts.source).map((p) => ({
          id: p.id,
          source: p.source,
          time: p.time,
          kind: p.kind,
          logicalBytes: p.logicalBytes,
          entries: p.files,
          readBytes: p.readBytes,
          newBytes: p.newBytes,
          storedNewBytes: p.storedNewBytes,
          durationMs: p.durationMs,
          parent: p.parent,
          torn: p.torn,
          pinned: p.pinned === true,
          verified: verified.get(p.id) ?? null,
        }));
        show(points, opts.json === true);
        return Promise.resolve();
      }, { lazyIndex: true });
    });
}

interface PointView {
  id: string;
  source: string;
  time: string;
  kind: string;
  logicalBytes: number;
  newBytes: number;
  pinned?: boolean;
  verified?: { time: string; ok: boolean } | null;
  /** the newest drill of the point (a server's points only) */
  drill?: { time: string; ok: boolean } | null;
}

/** 'ok 2026-11-25' / 'DAMAGED 2026-11-25' / '-' (never verified) */
function verifiedCell(p: PointView): string {
  if (!p.verified) return '-';
  return `${p.verified.ok ? 'ok' : 'DAMAGED'} ${p.verified.time.slice(0, 10)}`;
}

/** 'ok 2026-11-25' / 'FAILED 2026-11-25' / '-' (never drilled) */
function drillCell(p: PointView): string {
  if (!p.drill) return '-';
  return `${p.drill.ok ? 'ok' : 'FAILED'} ${p.drill.time.slice(0, 10)}`;
}

function show(points: PointView[], json: boolean): void {
  if (json) return printJson(points);
  if (points.length === 0) return info('no recovery points');
  info(['ID'.padEnd(14), 'SOURCE'.padEnd(16), 'TIME'.padEnd(25), 'KIND'.padEnd(6), 'LOGICAL'.padStart(10), 'NEW'.padStart(10), 'VERIFIED'.padEnd(19), 'DRILL'].join(' '));
  for (const p of points) {
    info([p.id.padEnd(14), p.source.padEnd(16), p.time.padEnd(25), p.kind.padEnd(6), formatBytes(p.logicalBytes).padStart(10), formatBytes(p.newBytes).padStart(10), `${verifiedCell(p)}${p.pinned ? ' (pinned)' : ''}`.padEnd(19), drillCell(p)].join(' '));
  }
}
