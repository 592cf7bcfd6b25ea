/**
 * holdfast points delete|pin|unpin --pool DIR --source S ID [--json]: subcommands of `points`,
 * registered on the command points.ts made. `points` itself knows --pool, --source and --json,
 * and commander gives such options to the parent wherever they stand, so they are read with
 * optsWithGlobals().
 */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { deletePoint, setPinned } from '../../pool/point-admin.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';

export function registerPointsAdmin(program: Command): void {
  const points = program.commands.find((c) => c.name() === 'points');
  if (!points) throw new Error('registerPointsAdmin: the points command must be registered first');
  points
    .command('delete')
    .description("delete one recovery point (its space comes back with the next 'holdfast gc')")
    .option('--pool <dir>', 'storage pool directory')
    .option('--source <name>', 'data source name')
    .argument('<id>', 'recovery point id (or a unique prefix)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      await withPool(opts.pool, async (pool) => {
        const p = await deletePoint(pool, opts.source, id);
        if (opts.json) printJson({ deleted: p.id, source: p.source, time: p.time });
        else info(`deleted recovery point ${p.id} of source '${p.source}' (${p.time})`);
      });
    });
  for (const pin of [true, false]) {
    points
      .command(pin ? 'pin' : 'unpin')
      .description(pin ? 'pin a recovery point: prune never removes it' : 'unpin a recovery point')
      .option('--pool <dir>', 'storage pool directory')
      .option('--source <name>', 'data source name')
      .argument('<id>', 'recovery point id (or a unique prefix)')
      .option('--json', 'machine-readable output')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const opts = globals(cmd);
        await withPool(opts.pool, async (pool) => {
          const p = await setPinned(pool, opts.source, id, pin);
          if (opts.json) printJson({ point: p.id, source: p.source, pinned: pin });
          else info(`${pin ? 'pinned' : 'unpinned'} recovery point ${p.id} of source '${p.source}'`);
        });
      });
  }
}

function globals(cmd: Command): { pool?: string; source: string; json?: boolean } {
  const o = cmd.optsWithGlobals<{ pool?: string; source?: string; json?: boolean }>();
  if (!o.source) throw new HoldfastError('BAD_ARGUMENT', `holdfast points ${cmd.name()} needs --source NAME`);
  return { ...o, source: o.source };
}
