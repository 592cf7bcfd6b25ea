/** holdfast verify (--pool DIR | --server URL) [--full [--older-than 7d]] [--json] */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { parseDuration } from '../../core/units.js';
import { verifyPool, type VerifyReport } from '../../pool/verify.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, progressBar } from '../output.js';
import { interruptSignal, withPool } from '../pool-option.js';
import { waitForTask, type TaskView } from '../task-wait.js';

type VerifyOpts = ServerOpts & { pool?: string; full?: boolean; olderThan?: string; json?: boolean };

export function registerVerify(program: Command): void {
  const cmd = program
    .command('verify')
    .description('check that every recovery point can be restored; --full re-reads and re-hashes every chunk; results are recorded per recovery point; on a local pool or on a protection server')
    .option('--pool <dir>', 'storage pool directory (local verify)')
    .option('--full', 'read every pack and re-hash every chunk')
    .option('--older-than <duration>', 'with --full: re-hash only packs not re-hashed within this span (e.g. 7d)')
    .option('--json', 'machine-readable output');
  addServerOptions(cmd).action(async (opts: VerifyOpts) => {
    if (opts.olderThan !== undefined && !opts.full) throw new HoldfastError('BAD_ARGUMENT', '--older-than only applies with --full');
    const report = opts.pool ? await localVerify(opts.pool, opts) : await serverVerify(opts);
    if (opts.json) printJson(report);
    else show(report);
    if (!report.ok) process.exitCode = 4;
  });
}

function localVerify(dir: string, opts: VerifyOpts): Promise<VerifyReport> {
  const olderThanMs = opts.olderThan === undefined ? undefined : parseDuration(opts.olderThan);
  return withPool(dir, async (pool) => {
    const bar = progressBar('verify packs', pool.index.packIds().length, !opts.json, 'count');
    try {
      return await verifyPool(pool, { full: opts.full === true, olderThanMs, onProgress: (d) => bar.update(d) });
    } finally {
      bar.stop();
    }
  });
}

/** The server verifies its pool as a background task; damage raises an alert there too. */
function serverVerify(opts: VerifyOpts): Promise<VerifyReport> {
  return withServer(opts, async (c) => {
    const task = await c.json<TaskView<VerifyReport>>('POST', '/api/v1/verify', { full: opts.full === true, ...(opts.olderThan ? { olderThan: opts.olderThan } : {}) });
    return waitForTask(c, task, !opts.json, interruptSignal());
  });
}

function show(report: VerifyReport): void {
  for (const p of report.problems) info(`problem: ${p}`);
  for (const c of report.damagedChunks) info(`damaged chunk ${c.digest} in pack ${c.pack}: ${c.reason}`);
  for (const p of report.damagedPoints) {
    info(`damaged recovery point ${p.point} (source ${p.source}, ${p.time})${p.reason ? `: ${p.reason}` : ''}`);
    for (const f of p.files) info(`  damaged file: ${f}`);
    for (const l of p.logs ?? []) info(`  damaged log record it needs: ${l}`);
  }
  for (const l of report.damagedLogs ?? []) info(`damaged log ${l.name} (source ${l.source}, seq ${l.seq}): ${l.reason}; recovery past it is not possible`);
  if (report.condemned > 0) info(`${report.condemned} damaged chunk(s) taken out of service: the next backup of a source that still has the data sends them again`);
  const recent = report.recentPacks > 0 ? `, ${report.recentPacks} packs re-hashed recently and only checked quickly` : '';
  info(
    report.ok
      ? `pool is sound: ${report.points} recovery points, ${report.chunks} chunks in ${report.packs} packs${report.full ? ' re-hashed' : ' indexed'}${recent}`
      : `pool is DAMAGED: ${report.damagedChunks.length} chunks, ${report.damagedPoints.length} recovery points${report.damagedLogs?.length ? ` and ${report.damagedLogs.length} log records` : ''} affected`,
  );
}
