/**
 * Runs one job the server handed out: a sync through syncSource into a RemoteSink, or a
 * restore from a RemoteSource, reporting progress about once a second and the outcome at the
 * end. A sync's tracker moves on only after the server answers that the point is committed.
 */
import { ATTEMPT_HEADER, type JobSpec, type RestoreJobSpec, type SyncJobSpec, type SyncReport } from '../../core/protocol.js';
import { HoldfastError } from '../../core/errors.js';
import type { CodecPool } from '../../workers/codec-pool.js';
import { CodecBatcher } from '../../workers/codec-batcher.js';
import { syncSource } from '../sync-source.js';
import { restore } from '../restore.js';
import { runSqliteRestoreJob } from '../databases/sqlite-restore.js';
import { runPostgresRestoreJob } from '../databases/postgres-restore.js';
import { pgArchiveFor } from '../databases/postgres-archive.js';
import { RemoteSink } from './remote-sink.js';
import { RemoteSource } from './remote-source.js';
import type { ServerClient } from './server-client.js';
import { Throttle } from './throttle.js';
import { runDrill } from './drill-runner.js';

export interface JobContext {
  client: ServerClient;
  codec: CodecPool;
  /** paths the agent never reads as source data (its own state) */
  exclude: string[];
  /** where trackers keep their state (bitmap names, snapshots, journals) */
  stateDir: string;
  /** the agent daemon's own state directory (log keys) and its log socket, for database sources */
  agentStateDir?: string;
  logSocket?: string;
  signal: AbortSignal;
  /** the daemon's log: a sync whose uploads wait on the server says so */
  log?: { warn(obj: object, msg: string): void };
}

/** Reports progress about once a second; `snapshot` is read at each tick (uploads move on between reads). */
const attemptOf = (spec: JobSpec): Record<string, string> => ({ [ATTEMPT_HEADER]: String(spec.attempt) });

function progressReporter(ctx: JobContext, jobId: string, headers: Record<string, string>, snapshot: () => Record<string, number | string>): { stop(): Promise<void> } {
  let last = '';
  let sending: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    const body = snapshot();
    const text = JSON.stringify(body);
    if (text === last) return;
    last = text;
    sending = ctx.client.json('POST', `/api/v1/agent/jobs/${jobId}/progress`, body, { signal: ctx.signal, headers }).catch(() => undefined);
  }, 1000);
  return {
    stop: async () => {
      clearInterval(timer);
      await sending;
    },
  };
}

async function runSync(ctx: JobContext, spec: SyncJobSpec): Promise<Record<string, unknown>> {
  const throttle = spec.throttleBps ? new Throttle(spec.throttleBps, Math.max(spec.throttleBps, 4 * 1024 * 1024 + 65536)) : undefined;
  const headers = attemptOf(spec);
  const sink = new RemoteSink(ctx.client, spec.id, spec.compressionLevel, throttle, ctx.signal, headers, (err, waitMs) =>
    ctx.log?.warn({ job: spec.id, source: spec.source.name, code: err.code, err: err.message, waitMs }, 'chunk upload will be tried again'),
  );
  const chunks = new RemoteSource(ctx.client, spec.id, headers);
  let seen = { entries: 0, bytesDone: 0, readBytes: 0 };
  const progress = progressReporter(ctx, spec.id, headers, () => ({ phase: 'sync', ...seen, sentBytes: sink.sentBytes }));
  let pending;
  try {
    const { options, ...source } = spec.source;
    pending = await syncSource({
      ...options,
      consistencyCheck: spec.consistencyCheck,
      source,
      parent: spec.parent,
      sink,
      chunks,
      batcher: new CodecBatcher(ctx.codec, spec.compressionLevel),
      cdc: spec.cdc,
      imageChunk: spec.imageChunk,
      exclude: ctx.exclude,
      stateDir: ctx.stateDir,
      syncEveryMs: spec.syncEveryMs,
      ...(source.kind === 'postgres' ? { pgArchive: await pgArchiveFor(ctx.agentStateDir, ctx.logSocket, source.name) } : {}),
      signal: ctx.signal,
      onProgress: (p) => {
        seen = { entries: p.entries, bytesDone: p.bytesDone, readBytes: p.readBytes };
      },
    });
    await sink.flush();
  } finally {
    await progress.stop();
  }
  const o = pending.outcome;
  const report: SyncReport = {
    manifest: o.manifest,
    entries: o.entries,
    logicalBytes: o.logicalBytes,
    readBytes: o.readBytes,
    sentBytes: sink.sentBytes,
    torn: o.torn,
    warnings: o.warnings,
    tracker: o.tracker,
    sourcePath: spec.source.path,
    ...(o.check ? { check: o.check } : {}),
    ...(o.meta ? { meta: o.meta } : {}),
    ...(o.pointTime ? { pointTime: o.pointTime } : {}),
  };
  let result: Record<string, unknown>;
  try {
    result = await ctx.client.json<Record<string, unknown>>('POST', `/api/v1/agent/jobs/${spec.id}/complete-sync`, report, { signal: ctx.signal, timeoutMs: 600_000, headers });
  } catch (err) {
    await pending.abandon();
    throw err;
  }
  await pending.committed(String(result.point));
  return result;
}

async function runRestore(ctx: JobContext, spec: RestoreJobSpec): Promise<Record<string, unknown>> {
  if (spec.database?.kind === 'sqlite') return runSqliteRestoreJob(ctx, spec, attemptOf(spec));
  if (spec.database?.kind === 'postgres') return runPostgresRestoreJob(ctx, spec, attemptOf(spec));
  let seen = { entries: 0, bytesDone: 0 };
  const headers = attemptOf(spec);
  const progress = progressReporter(ctx, spec.id, headers, () => ({ phase: 'restore', ...seen, totalBytes: spec.point.logicalBytes }));
  let out;
  try {
    out = await restore({
      source: new RemoteSource(ctx.client, spec.id, headers),
      manifest: spec.point.manifest,
      kind: spec.source.kind,
      target: spec.target,
      subPath: spec.subPath,
      subPaths: spec.subPaths,
      overwrite: spec.overwrite,
      rename: spec.rename,
      owner: spec.owner,
      signal: ctx.signal,
      onProgress: (p) => {
        seen = { entries: p.entries, bytesDone: p.bytes };
      },
      label: `recovery point ${spec.point.id} of source '${spec.source.name}'`,
      codec: ctx.codec,
    });
  } finally {
    await progress.stop();
  }
  return ctx.client.json('POST', `/api/v1/agent/jobs/${spec.id}/complete-restore`, out, { signal: ctx.signal, headers });
}

/**
 * Syncs of one source run one after the other in this process: the server may hand out the next
 * sync the moment it has answered that the previous point is committed, before the previous
 * sync's tracker has saved its state (committed()), which the next one must see.
 */
const sourceTurns = new Map<string, Promise<void>>();
function oneAtATime<T>(source: string, fn: () => Promise<T>): Promise<T> {
  const run = (sourceTurns.get(source) ?? Promise.resolve()).then(fn);
  const turn = run.then(
    () => undefined,
    () => undefined,
  );
  sourceTurns.set(source, turn);
  void turn.then(() => {
    if (sourceTurns.get(source) === turn) sourceTurns.delete(source);
  });
  return run;
}

/** Runs the job; on failure tells the server why (unless the server is what failed). */
export async function runJob(ctx: JobContext, spec: JobSpec): Promise<Record<string, unknown> | undefined> {
  try {
    if (spec.type === 'drill') return await runDrill(ctx, spec);
    return spec.type === 'sync' ? await oneAtATime(spec.source.name, () => runSync(ctx, spec)) : await runRestore(ctx, spec);
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    const e = err instanceof HoldfastError ? { code: err.code, message: err.message } : { code: 'AGENT_ERROR', message: (err as Error).stack ?? String(err) };
    if (e.code === 'SERVER_UNREACHABLE') throw err; // the server requeues the job when we say hello again
    await ctx.client.json('POST', `/api/v1/agent/jobs/${spec.id}/fail`, { code: e.code, message: e.message.slice(0, 8000) }, { signal: ctx.signal, retries: 3, headers: attemptOf(spec) }).catch(() => undefined);
    return undefined;
  }
}
