/** holdfast group create NAME [--sync-every 15m] [--points 08:00,...] [--retain 14d] [--compress on|off] [--throttle 20MiB/s]; group list. */
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
}

function onOff(v: string): boolean {
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new HoldfastError('BAD_ARGUMENT', `--compress takes on or off, not '${v}'`);
}

const dur = (ms: number | null): string => (ms === null ? '-' : ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);

export function registerGroup(program: Command): void {
  const cmd = program.command('group').description('protection groups: the policy (sync frequency, recovery point times, retention, compression, throttle) shared by their sources');
  addServerOptions(
    cmd
      .command('create <name>')
      .description('create a protection group')
      .option('--sync-every <duration>', 'how often sources sync (e.g. 15m; "off" for points only)', '15m')
      .option('--points <times>', 'recovery point times of day, HH:MM comma-separated (server local time)')
      .option('--retain <duration>', 'retention range', '14d')
      .option('--compress <on|off>', 'compress on the wire and in the pool', 'on')
      .option('--throttle <rate>', 'bandwidth limit per sync, e.g. 20MiB/s')
      .option('--json', 'machine-readable output'),
  ).action(async (name: string, opts: ServerOpts & { syncEvery: string; points?: string; retain: string; compress: string; throttle?: string; json?: boolean }) => {
    const body = {
      name,
      syncEvery: opts.syncEvery,
      points: opts.points ? opts.points.split(',').map((s) => s.trim()).filter(Boolean) : [],
      retain: opts.retain,
      compress: onOff(opts.compress),
      ...(opts.throttle ? { throttle: opts.throttle } : {}),
    };
    await withServer(opts, async (c) => {
      const g = await c.json<GroupView>('POST', '/api/v1/groups', body);
      if (opts.json) printJson(g);
      else info(`protection group '${g.name}' created`);
    });
  });
  addServerOptions(cmd.command('list').description('list protection groups').option('--json', 'machine-readable output')).action(async (opts: ServerOpts & { json?: boolean }) => {
    await withServer(opts, async (c) => {
      const groups = await c.json<GroupView[]>('GET', '/api/v1/groups');
      if (opts.json) return printJson(groups);
      table(
        ['NAME', 'SYNC EVERY', 'POINTS', 'RETAIN', 'COMPRESS', 'THROTTLE'],
        groups.map((g) => [g.name, dur(g.syncEveryMs), g.points.join(',') || '-', dur(g.retainMs), g.compress ? 'on' : 'off', g.throttleBps ? `${formatBytes(g.throttleBps)}/s` : '-']),
      );
    });
  });
}
