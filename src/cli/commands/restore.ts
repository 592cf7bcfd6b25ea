/**
 * holdfast restore (--pool DIR | --server URL [--agent A]) --source NAME [--point ID | --at TIME] [--path SUBPATH]... --to TARGET [--overwrite]
 * Database sources (through a server): --source S (--at TIME | --point ID | --latest) --to DIR [--no-start] [--port N].
 */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { localRestore } from '../local-engine.js';
import { info, printJson, progressBar, warn } from '../output.js';
import { interruptSignal, withPool } from '../pool-option.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { waitForJob, type JobView } from '../job-wait.js';

export function registerRestore(program: Command): void {
  const cmd = program
    .command('restore')
    .description('restore a recovery point, or one path of it, to a target directory (or file, for images); from a local pool, or through a server on an agent')
    .option('--pool <dir>', 'storage pool directory (local restore)')
    .option('--agent <name>', 'with --server: restore on this agent instead of the one that owns the source')
    .requiredOption('--source <name>', 'data source name')
    .option('--point <id>', 'recovery point id (or a unique prefix)')
    .option('--at <time>', 'the latest recovery point at or before this ISO 8601 time (a database source: recovered to exactly this time with its shipped logs)')
    .option('--latest', 'a database source: recover as far as its shipped logs go')
    .option('--no-start', 'a database source: only prepare the directory (recovery settings written), do not start the database')
    .option('--port <n>', 'a database source: start PostgreSQL on this port (default: a free one)')
    .option('--path <subpath>', 'restore only this file or directory; it is placed inside TARGET under its own name (repeat for several, restored together)', (v: string, all: string[] = []) => [...all, v])
    .requiredOption('--to <target>', 'where to restore')
    .option('--overwrite', 'restore into a non-empty target: entries of the point replace what stands at their paths; other files stay')
    .option('--json', 'print the result as JSON');
  addServerOptions(cmd).action(async (opts: RestoreOpts & { pool?: string }) => {
      if ([opts.point, opts.at, opts.latest].filter((x) => x !== undefined).length > 1) throw new HoldfastError('BAD_ARGUMENT', 'give one of --point, --at or --latest');
      if (opts.latest && opts.pool) throw new HoldfastError('BAD_ARGUMENT', '--latest is for database sources, restored through a server');
      if (!opts.pool) return serverRestore(opts);
      await withPool(opts.pool, async (pool) => {
        const p = pool.resolvePoint(opts.source, { point: opts.point, at: opts.at });
        const bar = progressBar(`restore ${opts.source}`, p.logicalBytes, !opts.json);
        let r;
        try {
          r = await localRestore(pool, {
            source: opts.source,
            point: p.id,
            paths: opts.path,
            to: opts.to,
            overwrite: opts.overwrite === true,
            signal: interruptSignal(),
            onProgress: (x) => bar.update(x.bytes, `${x.entries} entries`),
          });
        } finally {
          bar.stop();
        }
        for (const w of r.warnings) warn(w);
        if (opts.json) printJson(r);
        else info(`restored ${r.entries} entries (${formatBytes(r.bytes)}) of recovery point ${r.point} to ${r.target}`);
      }, { warm: true });
    });
}

/** The restore runs on an agent: the owner of the source, or --agent (an alternate host). */
type RestoreOpts = ServerOpts & { agent?: string; source: string; point?: string; at?: string; latest?: boolean; start?: boolean; port?: string; path?: string[]; to: string; overwrite?: boolean; json?: boolean };

async function serverRestore(opts: RestoreOpts): Promise<void> {
  const port = opts.port === undefined ? undefined : Number.parseInt(opts.port, 10);
  if (port !== undefined && !(port > 0 && port < 65536)) throw new HoldfastError('BAD_ARGUMENT', `--port ${opts.port} is not a port number`);
  await withServer(opts, async (c) => {
    const job = await c.json<JobView>('POST', '/api/v1/restores', {
      source: opts.source,
      to: opts.to,
      overwrite: opts.overwrite === true,
      ...(opts.point ? { point: opts.point } : {}),
      ...(opts.at ? { at: opts.at } : {}),
      ...(opts.latest ? { latest: true } : {}),
      ...(opts.start === false ? { start: false } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(opts.path?.length === 1 ? { path: opts.path[0] } : opts.path ? { paths: opts.path } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
    const done = await waitForJob(c, job, !opts.json, interruptSignal());
    const r = done.result ?? {};
    for (const w of (r.warnings as string[] | undefined) ?? []) warn(w);
    if (opts.json) printJson({ job: done.id, ...r });
    else info(`restored ${String(r.entries)} entries (${formatBytes(Number(r.bytes))}) of recovery point ${String(r.point)} to ${String(r.target)}`);
    const db = r.database as Record<string, unknown> | undefined;
    if (db && !opts.json) info(`database: ${Object.entries(db).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`);
  });
}
