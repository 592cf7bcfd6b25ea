/**
 * holdfast group create NAME [--sync-every 15m] [--points 08:00,...] [--retain 14d] [--compress on|off] [--throttle 20MiB/s]
 *   [--keep-last N --keep-daily N ...] [--quota-factor F | --quota SIZE] [--drill-schedule 03:30|7d|off] [--drill-query SQL];
 *   group edit NAME (the same options); group list.
 */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, table } from '../output.js';

interface GroupView {
  name: string;
  syncEveryMs: number | null;
  points: string[];
  retainMs: number;
  compress: boolean;
  throttleBps: number | null;
  keep?: Record<string, number>;
  quotaFactor?: number;
  quotaBytes?: number | null;
  drillSchedule?: string | null;
}

interface GroupCliOpts extends ServerOpts {
  syncEvery?: string;
  points?: string;
  retain?: string;
  compress?: string;
  throttle?: string;
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  quotaFactor?: number;
  quota?: string;
  drillSchedule?: string;
  drillQuery?: string;
  json?: boolean;
}

function onOff(v: string): boolean {
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new HoldfastError('BAD_ARGUMENT', `--compress takes on or off, not '${v}'`);
}

function count(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new HoldfastError('BAD_ARGUMENT', `--keep-${flag} needs a whole number (0 clears the rule), not '${v}'`);
    return n;
  };
}

function factor(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new HoldfastError('BAD_ARGUMENT', `--quota-factor needs a number above 0, not '${v}'`);
  return n;
}

const dur = (ms: number | null): string => (ms === null ? '-' : ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);

/** The options create and edit share; edit has no defaults, so that only what is given changes. */
function policyOptions(cmd: Command, defaults: boolean): Command {
  const d = <T>(v: T): T | undefined => (defaults ? v : undefined);
  return cmd
    .option('--sync-every <duration>', 'how often sources sync (e.g. 15m; "off" for points only)', d('15m'))
    .option('--points <times>', 'recovery point times of day, HH:MM comma-separated (server local time)')
    .option('--retain <duration>', 'retention range: every recovery point within it before the newest is kept', d('14d'))
    .option('--keep-last <n>', 'also keep the newest N points', count('last'))
    .option('--keep-hourly <n>', 'also keep the newest point of each of the last N hours', count('hourly'))
    .option('--keep-daily <n>', 'also keep the newest point of each of the last N days', count('daily'))
    .option('--keep-weekly <n>', 'also keep the newest point of each of the last N ISO weeks', count('weekly'))
    .option('--keep-monthly <n>', 'also keep the newest point of each of the last N months', count('monthly'))
    .option('--keep-yearly <n>', 'also keep the newest point of each of the last N years', count('yearly'))
    .option('--quota-factor <f>', "each source's quota: DPM 2007's default allocation times this (default 1)", factor)
    .option('--quota <size>', "an explicit quota per source (e.g. 50GiB), or 'default' for DPM's allocation")
    .option('--compress <on|off>', 'compress on the wire and in the pool', d('on'))
    .option('--throttle <rate>', 'bandwidth limit per sync, e.g. 20MiB/s ("off" to remove)')
    .option('--drill-schedule <when>', 'recoverability drills of each source: times of day HH:MM[,HH:MM] or an interval (e.g. 7d); "off" to stop')
    .option('--drill-query <sql>', 'a query each drill runs as well (PostgreSQL: the check where amcheck is missing); "" clears')
    .option('--json', 'machine-readable output');
}

function body(opts: GroupCliOpts): Record<string, unknown> {
  const b: Record<string, unknown> = {
    syncEvery: opts.syncEvery,
    points: opts.points === undefined ? undefined : opts.points.split(',').map((s) => s.trim()).filter(Boolean),
    retain: opts.retain,
    compress: opts.compress === undefined ? undefined : onOff(opts.compress),
    throttle: opts.throttle,
    keepLast: opts.keepLast,
    keepHourly: opts.keepHourly,
    keepDaily: opts.keepDaily,
    keepWeekly: opts.keepWeekly,
    keepMonthly: opts.keepMonthly,
    keepYearly: opts.keepYearly,
    quotaFactor: opts.quotaFactor,
    quota: opts.quota,
    drillSchedule: opts.drillSchedule,
    drillQuery: opts.drillQuery,
  };
  for (const k of Object.keys(b)) if (b[k] === undefined) delete b[k];
  return b;
}

const keepText = (k: Record<string, number> | undefined): string =>
  Object.entries(k ?? {})
    .map(([r, n]) => `${r} ${n}`)
    .join(', ') || '-';

export function registerGroup(program: Command): void {
  const cmd = program.command('group').description('protection groups: the policy (sync frequency, recovery point times, retention, quota, compression, throttle) shared by their sources');
  addServerOptions(policyOptions(cmd.command('create <name>').description('create a protection group'), true)).action(async (name: string, opts: GroupCliOpts) => {
    await withServer(opts, async (c) => {
      const g = await c.json<GroupView>('POST', '/api/v1/groups', { name, ...body(opts) });
      if (opts.json) printJson(g);
      else info(`protection group '${g.name}' created`);
    });
  });
  addServerOptions(policyOptions(cmd.command('edit <name>').description("change a protection group's policy (only the options given)"), false)).action(async (name: string, opts: GroupCliOpts) => {
    const b = body(opts);
    if (Object.keys(b).length === 0) throw new HoldfastError('BAD_ARGUMENT', 'nothing to change: give at least one option (see holdfast group edit --help)');
    await withServer(opts, async (c) => {
      const g = await c.json<GroupView>('PATCH', `/api/v1/groups/${encodeURIComponent(name)}`, b);
      if (opts.json) printJson(g);
      else info(`protection group '${g.name}' changed`);
    });
  });
  addServerOptions(cmd.command('list').description('list protection groups').option('--json', 'machine-readable output')).action(async (opts: ServerOpts & { json?: boolean }) => {
    await withServer(opts, async (c) => {
      const groups = await c.json<GroupView[]>('GET', '/api/v1/groups');
      if (opts.json) return printJson(groups);
      table(
        ['NAME', 'SYNC EVERY', 'POINTS', 'RETAIN', 'KEEP', 'QUOTA', 'COMPRESS', 'THROTTLE', 'DRILLS'],
        groups.map((g) => [
          g.name,
          dur(g.syncEveryMs),
          g.points.join(',') || '-',
          dur(g.retainMs),
          keepText(g.keep),
          g.quotaBytes ? formatBytes(g.quotaBytes) : `dpm x ${g.quotaFactor ?? 1}`,
          g.compress ? 'on' : 'off',
          g.throttleBps ? `${formatBytes(g.throttleBps)}/s` : '-',
          g.drillSchedule ?? '-',
        ]),
      );
    });
  });
}
