/** holdfast verify --pool DIR [--full] [--json] */
import type { Command } from 'commander';
import { verifyPool } from '../../pool/verify.js';
import { info, printJson, progressBar } from '../output.js';
import { withPool } from '../pool-option.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check that every recovery point can be restored; --full re-reads and re-hashes every chunk')
    .requiredOption('--pool <dir>', 'storage pool directory')
    .option('--full', 'read every pack and re-hash every chunk')
    .option('--json', 'machine-readable output')
    .action(async (opts: { pool: string; full?: boolean; json?: boolean }) => {
      await withPool(opts.pool, async (pool) => {
        const bar = progressBar('verify packs', pool.index.packIds().length, !opts.json, 'count');
        let report;
        try {
          report = await verifyPool(pool, { full: opts.full === true, onProgress: (d) => bar.update(d) });
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
          info(
            report.ok
              ? `pool is sound: ${report.points} recovery points, ${report.chunks} chunks in ${report.packs} packs${report.full ? ' re-hashed' : ' indexed'}`
              : `pool is DAMAGED: ${report.damagedChunks.length} chunks, ${report.damagedPoints.length} recovery points affected`,
          );
        }
        if (!report.ok) process.exitCode = 4;
      });
    });
}
