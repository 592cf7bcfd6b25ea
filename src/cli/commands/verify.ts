/** holdfast verify --pool DIR [--full [--older-than 7d]] [--json] */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { parseDuration } from '../../core/units.js';
import { verifyPool } from '../../pool/verify.js';
import { info, printJson, progressBar } from '../output.js';
import { withPool } from '../pool-option.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check that every recovery point can be restored; --full re-reads and re-hashes every chunk; results are recorded per recovery point')
    .requiredOption('--pool <dir>', 'storage pool directory')
    .option('--full', 'read every pack and re-hash every chunk')
    .option('--older-than <duration>', 'with --full: re-hash only packs not re-hashed within this span (e.g. 7d)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { pool: string; full?: boolean; olderThan?: string; json?: boolean }) => {
      if (opts.olderThan !== undefined && !opts.full) throw new HoldfastError('BAD_ARGUMENT', '--older-than only applies with --full');
      const olderThanMs = opts.olderThan === undefined ? undefined : parseDuration(opts.olderThan);
      await withPool(opts.pool, async (pool) => {
        const bar = progressBar('verify packs', pool.index.packIds().length, !opts.json, 'count');
        let report;
        try {
          report = await verifyPool(pool, { full: opts.full === true, olderThanMs, onProgress: (d) => bar.update(d) });
        } finally {
          bar.stop();
        }
        if (opts.json) printJson(report);
        else {
          for (const p of report.problems) info(`problem: ${p}`);
          for (const c of report.damagedChunks) info(`damaged chunk ${c.digest} in pack ${c.pack}: ${c.reason}`);
          for (const p of report.damagedPoints) {
            info(`damaged recovery point ${p.point} (source ${p.source}, ${p.time})${p.reason ? `: ${p.reason}` : ''}`);
            for (const f of p.files) info(`  damaged file: ${f}`);
          }
          if (report.condemned > 0) info(`${report.condemned} damaged chunk(s) taken out of service: the next backup of a source that still has the data sends them again`);
          const recent = report.recentPacks > 0 ? `, ${report.recentPacks} packs re-hashed recently and only checked quickly` : '';
          info(
            report.ok
              ? `pool is sound: ${report.points} recovery points, ${report.chunks} chunks in ${report.packs} packs${report.full ? ' re-hashed' : ' indexed'}${recent}`
              : `pool is DAMAGED: ${report.damagedChunks.length} chunks, ${report.damagedPoints.length} recovery points affected`,
          );
        }
        if (!report.ok) process.exitCode = 4;
      });
    });
}
