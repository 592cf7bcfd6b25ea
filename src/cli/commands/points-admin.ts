/**
 * holdfast points delete|pin|unpin (--pool DIR | --server URL) --source S ID [--json]: subcommands
 * of `points`, registered on the command points.ts made. `points` itself knows --pool, --server,
 * --token-file, --source and --json, and commander gives such options to the parent wherever they
 * stand, so they are read with optsWithGlobals().
 */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { deletePoint, setPinned } from '../../pool/point-admin.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';
import { withServer, type ServerOpts } from '../admin-client.js';

export function registerPointsAdmin(program: Command): void {
  const points = program.commands.find((c) => c.name() === 'points');
  if (!points) throw new Error('registerPointsAdmin: the points command must be registered first');
  points
    .command('delete')
    .description("delete one recovery point (its space comes back with the next 'holdfast gc')")
    .option('--pool <dir>', 'storage pool directory (else: the protection server, --server URL)')
    .option('--source <name>', 'data source name')
    .argument('<id>', 'recovery point id (or a unique prefix)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      const p = opts.pool
        ? await withPool(opts.pool, async (pool) => {
            const d = await deletePoint(pool, opts.source, id);
            return { deleted: d.id, source: d.source, time: d.time };
          })
        : await withServer(opts, (c) => c.json<{ deleted: string; source: string; time: string }>('DELETE', `/api/v1/sources/${encodeURIComponent(opts.source)}/points/${encodeURIComponent(id)}`));
      if (opts.json) printJson(p);
      else info(`deleted recovery point ${p.deleted} of source '${p.source}' (${p.time})`);
    });
  for (const pin of [true, false]) {
    points
      .command(pin ? 'pin' : 'unpin')
      .description(pin ? 'pin a recovery point: prune never removes it' : 'unpin a recovery point')
      .option('--pool <dir>', 'storage pool directory (else: the protection server, --server URL)')
      .option('--source <name>', 'data source name')
      .argument('<id>', 'recovery point id (or a unique prefix)')
      .option('--json', 'machine-readable output')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const opts = globals(cmd);
        const p = opts.pool
          ? await withPool(opts.pool, async (pool) => {
              const r = await setPinned(pool, opts.source, id, pin);
              return { point: r.id, source: r.source, pinned: pin };
            })
          : await withServer(opts, (c) =>
              c.json<{ point: string; source: string; pinned: boolean }>('POST', `/api/v1/sources/${encodeURIComponent(opts.source)}/points/${encodeURIComponent(id)}/${pin ? 'pin' : 'unpin'}`),
            );
        if (opts.json) printJson(p);
        else info(`${pin ? 'pinned' : 'unpinned'} recovery point ${p.point} of source '${p.source}'`);
      });
  }
}

function globals(cmd: Command): ServerOpts & { pool?: string; source: string; json?: boolean } {
  const o = cmd.optsWithGlobals<ServerOpts & { pool?: string; source?: string; json?: boolean }>();
  if (!o.source) throw new HoldfastError('BAD_ARGUMENT', `holdfast points ${cmd.name()} needs --source NAME`);
  return { ...o, source: o.source };
}
