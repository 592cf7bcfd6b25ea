/**
 * Runs a recoverability drill the server handed out: restore the recovery point into a scratch
 * place, start and check the database the source holds (PostgreSQL: amcheck or a query; SQLite:
 * integrity_check), stop it, remove the copy, and report {ok, detail}. A source that is not a
 * database is checked by its restore alone: every chunk is verified against its digest before a
 * byte is written, and the restored total must equal the point's.
 *
 * What the drill found goes to the server as a result either way (a damaged chunk, a cluster that
 * will not start, a failed check: ok false). Only an interrupted drill (the server unreachable,
 * the agent stopping) is thrown, so the server hands it out again.
 *
 * The scratch place is a directory under the system's temporary directory (TMPDIR), not the
 * agent's state directory: PostgreSQL runs as the data directory's owner, who must be able to
 * reach it, and the state directory is the agent's alone (0700).
 */
import { chmod, chown, mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { ATTEMPT_HEADER, type DrillJobSpec, type DrillReport } from '../../core/protocol.js';
import { HoldfastError, isHoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { restore } from '../restore.js';
import { checkPostgres, connectTarget } from '../databases/postgres-check.js';
import { checkSqlite } from '../databases/sqlite-check.js';
import { restoreSqlite } from '../databases/sqlite-restore.js';
import { preparePostgres } from '../databases/postgres-restore.js';
import type { CheckResult } from '../databases/database-check.js';
import { RemoteSource } from './remote-source.js';
import type { JobContext } from './job-runner.js';

/** Restore errors that mean the agent or the link failed, not the recovery point: the drill is run again. */
const INTERRUPTIONS = new Set(['SERVER_UNREACHABLE', 'ABORTED', 'BUSY', 'RETRY', 'UNAUTHORIZED', 'FORBIDDEN']);

/**
 * One scratch place per agent and source (a source never runs two jobs at once): a drill run
 * again — the same job resumed, or its retry after the agent was lost — finds and clears what the
 * earlier run left, including a PostgreSQL it had started.
 */
export function drillScratch(stateDir: string, source: string): string {
  const agent = createHash('sha256').update(stateDir).digest('hex').slice(0, 8);
  return join(tmpdir(), `holdfast-drill-${agent}-${source}`);
}

export async function runDrill(ctx: JobContext, spec: DrillJobSpec): Promise<Record<string, unknown>> {
  const headers = { [ATTEMPT_HEADER]: String(spec.attempt) };
  const scratch = drillScratch(ctx.stateDir, spec.source.name);
  await stopOrphan(join(scratch, 'data'));
  await rm(scratch, { recursive: true, force: true }); // an earlier attempt's copy
  await mkdir(scratch, { mode: 0o700 });
  // The owner PostgreSQL runs as must reach its data directory below; nobody may list it.
  await chmod(scratch, 0o711);
  let report: DrillReport;
  try {
    report = await drill(ctx, spec, scratch, headers);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return ctx.client.json('POST', `/api/v1/agent/jobs/${spec.id}/complete-drill`, report, { signal: ctx.signal, headers });
}

/** A PostgreSQL an earlier attempt started (its agent was killed mid-check) is shut down before its copy goes. */
async function stopOrphan(dataDir: string): Promise<void> {
  const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
  if (!(pid > 1)) return;
  try {
    process.kill(pid, 'SIGQUIT'); // immediate shutdown; its children follow
  } catch {
    return; // not running
  }
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
}

/** A failed restore: an interruption goes up (the job runs again); anything else is the drill's finding. */
function restoreFailed(ctx: JobContext, spec: DrillJobSpec, err: unknown, t0: number): DrillReport {
  if (ctx.signal.aborted || (isHoldfastError(err) && INTERRUPTIONS.has(err.code))) throw err;
  const why = isHoldfastError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
  return fail('restore', `the restore of recovery point ${spec.point.id} failed: ${why}`, Date.now() - t0);
}

async function drill(ctx: JobContext, spec: DrillJobSpec, scratch: string, headers: Record<string, string>): Promise<DrillReport> {
  if (spec.source.kind === 'sqlite' && !spec.check.kind) return sqliteDrill(ctx, spec, scratch, headers);
  if (spec.source.kind === 'postgres' && !spec.check.kind) return postgresDrill(ctx, spec, scratch, headers);
  const target = join(scratch, 'data');
  const t0 = Date.now();
  let out;
  try {
    out = await restore({
      source: new RemoteSource(ctx.client, spec.id, headers),
      manifest: spec.point.manifest,
      kind: spec.point.kind,
      target,
      overwrite: false,
      signal: ctx.signal,
      label: `recovery point ${spec.point.id} of source '${spec.source.name}' (drill)`,
      codec: ctx.codec,
    });
  } catch (err) {
    return restoreFailed(ctx, spec, err, t0);
  }
  const restoreMs = Date.now() - t0;
  const base = { restoreMs, entries: out.entries, bytes: out.bytes };
  if (out.warnings.length > 0 && spec.source.kind !== 'dir' && spec.source.kind !== 'btrfs') {
    return { ...fail('restore', `the restore of recovery point ${spec.point.id} warned: ${out.warnings.slice(0, 5).join('; ')}`, restoreMs), ...base };
  }
  const t1 = Date.now();
  const kind = spec.check.kind ?? (spec.source.kind === 'postgres' || spec.source.kind === 'sqlite' ? spec.source.kind : 'bytes');
  let check: string;
  let r: CheckResult;
  try {
    if (kind === 'postgres') {
      check = 'postgres';
      await ownLikeContents(target, 'PG_VERSION');
      r = await checkPostgres({ dataDir: target, bin: spec.check.bin, ...connectTarget(spec.check.connect), query: spec.check.query, signal: ctx.signal });
    } else if (kind === 'sqlite') {
      check = 'sqlite-integrity';
      const files = spec.source.kind === 'sqlite' ? [await sqliteFile(target, spec.source.path)] : await sqliteFilesIn(target);
      r = await checkSqliteFiles(files, target, spec.check.query, ctx.signal);
    } else {
      check = 'bytes';
      r = bytesCheck(spec, out);
    }
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    const why = isHoldfastError(err) ? err.message : (err as Error).message;
    return { ...fail('check', `the check could not run: ${why}`, restoreMs), ...base, checkMs: Date.now() - t1 };
  }
  return { ok: r.ok, detail: r.detail, check, ...base, checkMs: Date.now() - t1, ...(r.counts ? { counts: r.counts } : {}) };
}

/**
 * A PostgreSQL source: its point is an express full; the data directory is rebuilt and recovery
 * configured from the shipped WAL up to the drill's time (postgres-restore.ts, the same path as a
 * restore), then the check starts it, waits for the end of recovery and runs amcheck.
 */
async function postgresDrill(ctx: JobContext, spec: DrillJobSpec, scratch: string, headers: Record<string, string>): Promise<DrillReport> {
  const t0 = Date.now();
  const target = join(scratch, 'data');
  let prepared;
  try {
    prepared = await preparePostgres({
      chunks: new RemoteSource(ctx.client, spec.id, headers),
      manifest: spec.point.manifest,
      logs: spec.logs ?? [],
      pointMeta: spec.point.meta ?? {},
      target,
      ...(spec.at ? { targetTime: spec.at } : {}),
      ...(spec.immediate ? { immediate: true } : {}),
      codec: ctx.codec,
      label: `recovery point ${spec.point.id} of source '${spec.source.name}' (drill)`,
      signal: ctx.signal,
    });
  } catch (err) {
    return restoreFailed(ctx, spec, err, t0);
  }
  const restoreMs = Date.now() - t0;
  const t1 = Date.now();
  const r = await checkPostgres({ dataDir: prepared.dataDir, bin: spec.check.bin, ...connectTarget(spec.check.connect), query: spec.check.query, signal: ctx.signal });
  const replay = `${prepared.logs} WAL file(s) to replay${spec.at ? ` up to ${spec.at}` : ''}`;
  return {
    ok: r.ok, detail: `${replay}; ${r.detail}`, check: 'postgres', restoreMs, checkMs: Date.now() - t1, entries: prepared.entries, bytes: prepared.bytes,
    ...(r.counts ? { counts: r.counts } : {}),
  };
}

/**
 * A SQLite source: its point is a snapshot replayed with the shipped WAL frames up to the drill's
 * time (sqlite-restore.ts, the same path as a restore), then checked.
 */
async function sqliteDrill(ctx: JobContext, spec: DrillJobSpec, scratch: string, headers: Record<string, string>): Promise<DrillReport> {
  const t0 = Date.now();
  const to = join(scratch, 'db');
  await mkdir(to, { mode: 0o700 });
  let out;
  try {
    out = await restoreSqlite({
      chunks: new RemoteSource(ctx.client, spec.id, headers),
      manifest: spec.point.manifest,
      logs: spec.logs ?? [],
      targetTime: spec.at,
      to,
      scratch: join(scratch, 'work'),
      codec: ctx.codec,
      label: `recovery point ${spec.point.id} of source '${spec.source.name}' (drill)`,
      signal: ctx.signal,
    });
  } catch (err) {
    if (ctx.signal.aborted || (isHoldfastError(err) && INTERRUPTIONS.has(err.code))) throw err;
    const why = isHoldfastError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
    // The restore checks what it rebuilt: a database that fails integrity_check is the check's finding.
    const check = /fails its check/.test(why) ? 'sqlite-integrity' : 'restore';
    return fail(check, `the restore of recovery point ${spec.point.id}${spec.at ? ` to ${spec.at}` : ''} failed: ${why}`, Date.now() - t0);
  }
  const restoreMs = Date.now() - t0;
  const replay = `replayed ${out.records} log record(s), ${out.frames} frame(s)${out.reached ? ` up to ${out.reached}` : ''}`;
  const base = { restoreMs, entries: 1, bytes: out.bytes, check: 'sqlite-integrity' };
  if (!spec.check.query) return { ok: true, detail: `${replay}; ${out.check}`, ...base, checkMs: 0 };
  const t1 = Date.now();
  const r = await checkSqlite({ file: out.file, query: spec.check.query, signal: ctx.signal });
  return { ok: r.ok, detail: `${replay}; ${r.detail}`, ...base, checkMs: Date.now() - t1, ...(r.counts ? { counts: r.counts } : {}) };
}

function fail(check: string, detail: string, restoreMs: number): DrillReport {
  return { ok: false, detail, check, restoreMs, checkMs: 0, entries: 0, bytes: 0 };
}

/** The database file in a restored SQLite point: the source's file name, or the one file there is. */
async function sqliteFile(target: string, sourcePath: string): Promise<string> {
  const named = join(target, basename(sourcePath));
  if (await stat(named).then((s) => s.isFile(), () => false)) return named;
  const files = (await readdir(target, { withFileTypes: true })).filter((e) => e.isFile() && !/-(wal|shm|journal)$/.test(e.name));
  if (files.length === 1 && files[0]) return join(target, files[0].name);
  if (await stat(target).then((s) => s.isFile(), () => false)) return target;
  throw new HoldfastError('PATH_NOT_FOUND', `the restored point has no database file '${basename(sourcePath)}' (found ${files.map((f) => f.name).join(', ') || 'nothing'})`);
}

/**
 * The restore target is this restore's own directory, made by the agent: PostgreSQL wants its data
 * directory owned by the cluster's owner and private, like the files in it.
 */
async function ownLikeContents(dir: string, file: string): Promise<void> {
  const st = await stat(join(dir, file)).catch(() => undefined);
  if (!st) return;
  await chown(dir, st.uid, st.gid);
  await chmod(dir, 0o700);
}

/** Every SQLite database in a restored tree (by its header), for a directory source checked as SQLite. */
async function sqliteFilesIn(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const fh = await open(p, 'r');
    try {
      const head = Buffer.alloc(16);
      await fh.read(head, 0, 16, 0);
      if (head.equals(SQLITE_HEADER)) out.push(p);
    } finally {
      await fh.close();
    }
  }
  if (out.length === 0) throw new HoldfastError('PATH_NOT_FOUND', 'the restored point holds no SQLite database');
  return out.sort();
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** One result for several files: ok when every one is. */
async function checkSqliteFiles(files: string[], root: string, query: string | undefined, signal: AbortSignal): Promise<CheckResult> {
  const started = Date.now();
  const results = [];
  for (const f of files) results.push({ f: relative(root, f) || basename(f), r: await checkSqlite({ file: f, query: files.length === 1 ? query : undefined, signal }) });
  if (results.length === 1 && results[0]) return results[0].r;
  const bad = results.filter((x) => !x.r.ok);
  const pages = results.reduce((n, x) => n + (x.r.counts?.pages ?? 0), 0);
  return {
    ok: bad.length === 0,
    detail: bad.length === 0 ? `${results.length} SQLite databases, ${pages} pages: integrity_check ok` : bad.map((x) => `${x.f}: ${x.r.detail}`).join('; '),
    durationMs: Date.now() - started,
    counts: { databases: results.length, pages },
  };
}

/** A restore that completed has verified every chunk; the totals must match the point's too. */
function bytesCheck(spec: DrillJobSpec, out: { entries: number; bytes: number }): CheckResult {
  const ok = out.bytes === spec.point.logicalBytes;
  const what = `restored ${out.entries} entries, ${formatBytes(out.bytes)}, every chunk verified against its digest`;
  return { ok, detail: ok ? what : `${what}; the point records ${formatBytes(spec.point.logicalBytes)}`, durationMs: 0, counts: { entries: out.entries, bytes: out.bytes } };
}
