/**
 * The integrity check of a restored SQLite database (a drill's scratch copy): open it — which
 * replays a restored -wal file — and run PRAGMA integrity_check, which reads every page, then
 * PRAGMA foreign_key_check. It runs in a worker thread: a large database would otherwise stall
 * the agent's event loop (and its heartbeats) for as long as the check reads.
 *
 * This module is also the worker's entry point (it knows it is one by its workerData).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { stat } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { HoldfastError } from '../../core/errors.js';
import type { CheckResult } from './database-check.js';

export interface SqliteCheckOptions {
  /** the restored database file (opened read-write: it is a scratch copy) */
  file: string;
  /** integrity_check reports at most this many problems; default 100 */
  maxErrors?: number;
  /** a query that must succeed as well, e.g. 'SELECT count(*) FROM orders' */
  query?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface WorkerInput {
  holdfastSqliteCheck: true;
  file: string;
  maxErrors: number;
  query?: string;
}

type WorkerOutput = { ok: boolean; problems: string[]; pages: number; tables: number; answer?: string };

export async function checkSqlite(o: SqliteCheckOptions): Promise<CheckResult> {
  const started = Date.now();
  const st = await stat(o.file).catch(() => undefined);
  if (!st?.isFile()) throw new HoldfastError('PATH_NOT_FOUND', `restored SQLite database ${o.file} does not exist`, { path: o.file });
  const input: WorkerInput = { holdfastSqliteCheck: true, file: o.file, maxErrors: o.maxErrors ?? 100, ...(o.query ? { query: o.query } : {}) };
  const out = await new Promise<WorkerOutput>((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: input });
    const stop = (err: Error): void => {
      void w.terminate();
      reject(err);
    };
    const timer = setTimeout(() => stop(new HoldfastError('ABORTED', `SQLite integrity check of ${o.file} took longer than ${Math.round((o.timeoutMs ?? 0) / 1000)} s`)), o.timeoutMs ?? 3_600_000);
    const onAbort = (): void => stop(new HoldfastError('ABORTED', `SQLite integrity check of ${o.file} was stopped`));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    w.once('message', (m: WorkerOutput) => resolve(m));
    w.once('error', reject);
    w.once('exit', () => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      reject(new Error('the SQLite check worker exited without an answer'));
    });
  });
  const what = `SQLite integrity_check of ${out.pages} pages, ${out.tables} tables`;
  const answer = out.answer === undefined ? '' : `; check query answered ${JSON.stringify(out.answer.slice(0, 200))}`;
  return {
    ok: out.ok,
    detail: out.ok ? `${what}: ok${answer}` : `${what}: ${out.problems.length} problem(s): ${out.problems.slice(0, 10).join('; ')}${out.problems.length > 10 ? '; …' : ''}`,
    durationMs: Date.now() - started,
    counts: { pages: out.pages, tables: out.tables },
  };
}

function check(input: WorkerInput): WorkerOutput {
  let db: Database.Database | undefined;
  const problems: string[] = [];
  let pages = 0;
  let tables = 0;
  let answer: string | undefined;
  try {
    db = new Database(input.file, { fileMustExist: true });
    pages = db.pragma('page_count', { simple: true }) as number;
    tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
    const rows = db.pragma(`integrity_check(${input.maxErrors})`) as Array<{ integrity_check: string }>;
    for (const r of rows) if (r.integrity_check !== 'ok') problems.push(r.integrity_check);
    const fk = db.pragma('foreign_key_check') as Array<{ table: string; rowid: number; parent: string }>;
    for (const f of fk.slice(0, 10)) problems.push(`foreign key: row ${f.rowid} of ${f.table} has no parent in ${f.parent}`);
    if (input.query) {
      const row = db.prepare(input.query).raw().get() as unknown[] | undefined;
      answer = row ? row.map(String).join('|') : '';
    }
  } catch (err) {
    problems.push(`${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`);
  } finally {
    try {
      db?.close();
    } catch {
      // closing a damaged database may fail too; the problem is already reported
    }
  }
  return { ok: problems.length === 0, problems, pages, tables, ...(answer !== undefined ? { answer } : {}) };
}

if (!isMainThread && (workerData as Partial<WorkerInput> | null)?.holdfastSqliteCheck === true) {
  parentPort?.postMessage(check(workerData as WorkerInput));
}
