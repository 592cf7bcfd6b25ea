/** holdfast backup --pool DIR --source NAME [--kind dir|image] PATH */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { localBackup } from '../local-engine.js';
import { info, printJson, progressBar, warn } from '../output.js';
import { interruptSignal, withPool } from '../pool-option.js';
import { stat } from 'node:fs/promises';

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('back up a directory or an image file into a local storage pool as a new recovery point')
    .requiredOption('--pool <dir>', 'storage pool directory')
    .requiredOption('--source <name>', 'data source name (created on first backup)')
    .option('--kind <kind>', 'dir (a directory tree) or image (a disk image file)', 'dir')
    .option('--json', 'print the result as JSON')
    .argument('<path>', 'directory or image file to back up')
    .action(async (path: string, opts: { pool: string; source: string; kind: string; json?: boolean }) => {
      if (opts.kind !== 'dir' && opts.kind !== 'image') throw new HoldfastError('BAD_ARGUMENT', `unknown kind '${opts.kind}' (use dir or image)`);
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(opts.source)) {
        throw new HoldfastError('BAD_ARGUMENT', `source name '${opts.source}' must be 1-128 letters, digits, '.', '_' or '-'`);
      }
      const kind = opts.kind;
      await withPool(opts.pool, async (pool) => {
        const total = kind === 'image' ? await stat(path).then((s) => s.size, () => 0) : (pool.catalog.latestPoint(opts.source)?.logicalBytes ?? 0);
        const bar = progressBar(`backup ${opts.source}`, total, !opts.json);
        let r;
        try {
          r = await localBackup(pool, {
            source: opts.source,
            kind,
            path,
            signal: interruptSignal(),
            onProgress: (p) => bar.update(p.bytesDone, `${p.entries} entries`),
          });
        } finally {
          bar.stop();
        }
        for (const w of r.warnings) warn(w);
        for (const t of r.torn) warn(`${t}: changed on every read attempt; stored as last read and marked torn`);
        if (opts.json) printJson(r);
        else {
          info(r.point);
          process.stderr.write(
            `source ${r.source}: ${r.entries} entries, ${formatBytes(r.logicalBytes)} logical, ${formatBytes(r.readBytes)} read, ${formatBytes(r.newBytes)} new (${formatBytes(r.storedNewBytes)} stored) in ${(r.durationMs / 1000).toFixed(1)} s\n`,
          );
        }
      });
    });
}
