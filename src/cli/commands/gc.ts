/** holdfast gc (--pool DIR | --server URL) [--dry-run] [--repack-below 0.5] [--json] */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { DEFAULT_REPACK_BELOW, runGc, type GcPhase, type GcReport } from '../../pool/gc.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, progressBar, type Progress } from '../output.js';
import { interruptSignal, withPool } from '../pool-option.js';
import { waitForTask, type TaskView } from '../task-wait.js';

type GcOpts = ServerOpts & { pool?: string; dryRun?: boolean; repackBelow: string; json?: boolean };

export function registerGc(program: Command): void {
  const cmd = program
    .command('gc')
    .description('garbage collection: free the space of chunks no recovery point needs (safe while backups run); on a local pool or on a protection server')
    .option('--pool <dir>', 'storage pool directory (local gc)')
    .option('--dry-run', 'report what would be freed, change nothing')
    .option('--repack-below <share>', `repack packs whose live share is below this (0-1)`, String(DEFAULT_REPACK_BELOW))
    .option('--json', 'machine-readable output');
  addServerOptions(cmd).action(async (opts: GcOpts) => {
    const repackBelow = Number(opts.repackBelow);
    if (!(repackBelow >= 0 && repackBelow <= 1)) throw new HoldfastError('BAD_ARGUMENT', `--repack-below must be a number between 0 and 1, not '${opts.repackBelow}'`);
    const r = opts.pool ? await localGc(opts.pool, opts, repackBelow) : await serverGc(opts, repackBelow);
    if (opts.json) return printJson(r);
    const would = r.dryRun ? 'would free' : 'freed';
    info(`marked ${r.liveChunks} live chunks in ${r.points} recovery points; ${r.dryRun ? 'would condemn' : 'condemned'} ${r.condemnedChunks} chunks (${formatBytes(r.condemnedBytes)})`);
    info(`${would} ${formatBytes(r.bytesFreed)}: ${r.chunksFreed} chunks, ${r.packsDeleted} packs deleted, ${r.packsRepacked} repacked (${formatBytes(r.bytesRewritten)} rewritten into ${r.packsWritten} packs)`);
    if (r.leftovers.tempFiles + r.leftovers.packs + r.leftovers.pointFiles > 0) {
      info(`removed leftovers of interrupted writers: ${r.leftovers.tempFiles} temporary files, ${r.leftovers.packs} packs without index, ${r.leftovers.pointFiles} point files (${formatBytes(r.leftovers.bytes)})`);
    }
    if (r.youngPacks > 0) info(`${r.youngPacks} packs are newer than the oldest running backup (${r.liveLeases} running) and were left for a later gc`);
  });
}

function localGc(dir: string, opts: GcOpts, repackBelow: number): Promise<GcReport> {
  return withPool(dir, async (pool) => {
    let bar: Progress | undefined;
    let phase: GcPhase | undefined;
    try {
      return await runGc(pool, {
        dryRun: opts.dryRun === true,
        repackBelow,
        signal: interruptSignal(),
        onProgress: (p, done, total) => {
          if (p !== phase) {
            bar?.stop();
            phase = p;
            bar = progressBar(`gc ${p}`, total, !opts.json, 'count');
          }
          bar?.update(done);
        },
      });
    } finally {
      bar?.stop();
    }
  });
}

/** The server runs gc on its pool as a background task (one gc or verify at a time); this waits for it. */
function serverGc(opts: GcOpts, repackBelow: number): Promise<GcReport> {
  return withServer(opts, async (c) => {
    const task = await c.json<TaskView<GcReport>>('POST', '/api/v1/gc', { dryRun: opts.dryRun === true, repackBelow });
    return waitForTask(c, task, !opts.json, interruptSignal());
  });
}
