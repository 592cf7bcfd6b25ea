/**
 * What an integrity check of a restored database reports, and the small process helper the
 * checks share: run a program (optionally as another user), capture its output, kill it at a
 * deadline or when the signal aborts.
 */
import { spawn } from 'node:child_process';

export interface CheckResult {
  ok: boolean;
  /** one paragraph a person reads: what was checked, and what was wrong */
  detail: string;
  durationMs: number;
  /** what the check covered, e.g. {indexes: 42, tables: 17} or {pages: 1234} */
  counts?: Record<string, number>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** 'exit 3', 'timeout after 60 s', 'signal SIGKILL', 'spawn failed: …' */
  why: string;
}

export interface RunOptions {
  uid?: number;
  gid?: number;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  /** keep at most this much of each stream (the tail matters most: PostgreSQL's errors) */
  keepBytes?: number;
}

/** Runs `file args…` without a shell; never throws. */
export function runProgram(file: string, args: string[], o: RunOptions): Promise<RunResult> {
  const keep = o.keepBytes ?? 256 * 1024;
  return new Promise((resolve) => {
    let out = '';
    let err = '';
    let why = '';
    const child = spawn(file, args, {
      cwd: o.cwd,
      uid: o.uid,
      gid: o.gid,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const cap = (s: string, d: Buffer): string => (s + d.toString()).slice(-keep);
    child.stdout.on('data', (d: Buffer) => (out = cap(out, d)));
    child.stderr.on('data', (d: Buffer) => (err = cap(err, d)));
    const kill = (reason: string): void => {
      why ||= reason;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(`timeout after ${Math.round(o.timeoutMs / 1000)} s`), o.timeoutMs);
    const onAbort = (): void => kill('aborted');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (code: number | null, sig: string | null, spawnErr?: Error): void => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      resolve({ code, stdout: out, stderr: err, why: why || (spawnErr ? `spawn failed: ${spawnErr.message}` : sig ? `signal ${sig}` : `exit ${code}`) });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, sig) => finish(code, sig));
  });
}

/** The last lines of a log or stream, for a detail message. */
export function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}
