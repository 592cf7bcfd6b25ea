/**
 * Quiescing around the snapshot moment: a pre-snapshot command (put the application's data in a
 * clean state), optionally `fsfreeze` of the source's filesystem, the snapshot itself, then thaw
 * and the post-snapshot command. The post command and the thaw always run, even when the pre
 * command or the snapshot failed. Commands run with `sh -c` and are killed at their timeout.
 *
 * A frozen filesystem blocks every writer on the host, and a killed agent could never thaw it:
 * a detached watchdog (`sleep; fsfreeze -u`) thaws it at the timeout whatever happens to us.
 */
import { spawn } from 'node:child_process';
import { spawnChild } from '../native/spawn.js';
import { HoldfastError } from '../core/errors.js';

export interface QuiesceOptions {
  preSnapshot?: string;
  postSnapshot?: string;
  /** limit for each command and for the freeze; default 60 s */
  timeoutMs: number;
  /** freeze the filesystem that holds this path while the snapshot is taken */
  fsfreeze?: boolean;
}

export const DEFAULT_QUIESCE_TIMEOUT_MS = 60_000;

export interface QuiesceResult<T> {
  value: T;
  warnings: string[];
}

/** Runs `take` inside the quiesce window for `path`; post-snapshot failures are warnings. */
export async function quiesce<T>(path: string, o: Partial<QuiesceOptions>, take: () => Promise<T>): Promise<QuiesceResult<T>> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_QUIESCE_TIMEOUT_MS;
  const warnings: string[] = [];
  let thaw: (() => Promise<void>) | undefined;
  try {
    if (o.preSnapshot) {
      const r = await runCommand(o.preSnapshot, timeoutMs, { HOLDFAST_SOURCE_PATH: path });
      if (r.code !== 0) throw new HoldfastError('SOURCE_UNREADABLE', `pre-snapshot command failed (${r.why}): ${r.stderr.trim().slice(0, 500)}`, { path });
    }
    if (o.fsfreeze) thaw = await freeze(path, timeoutMs);
    const value = await take();
    return { value, warnings };
  } finally {
    if (thaw) await thaw().catch((err: unknown) => warnings.push(`fsfreeze -u failed: ${(err as Error).message}`));
    if (o.postSnapshot) {
      const r = await runCommand(o.postSnapshot, timeoutMs, { HOLDFAST_SOURCE_PATH: path });
      if (r.code !== 0) warnings.push(`post-snapshot command failed (${r.why}): ${r.stderr.trim().slice(0, 500)}`);
    }
  }
}

interface CommandResult {
  code: number;
  why: string;
  stdout: string;
  stderr: string;
}

/** Runs `sh -c command`, killing its whole process group at the timeout. */
export function runCommand(command: string, timeoutMs: number, env: Record<string, string> = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawnChild('sh', ['-c', command], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', (err: Error) => {
      clearTimeout(timer);
      resolve({ code: 127, why: err.message, stdout, stderr });
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      const why = timedOut ? `timed out after ${timeoutMs} ms` : signal ? `killed by ${signal}` : `exit status ${code}`;
      resolve({ code: timedOut ? 124 : (code ?? 128), why, stdout, stderr });
    });
  });
}

/** Freezes the filesystem holding `path`; returns the thaw. */
async function freeze(path: string, timeoutMs: number): Promise<() => Promise<void>> {
  const found = await runCommand(`findmnt -n -o TARGET --target "$HOLDFAST_FREEZE_PATH"`, 10_000, { HOLDFAST_FREEZE_PATH: path });
  const mount = found.stdout.trim().split('\n')[0];
  if (found.code !== 0 || !mount) throw new HoldfastError('SOURCE_UNREADABLE', `cannot find the mount point of ${path} to freeze it`, { path });
  if (mount === '/') throw new HoldfastError('BAD_ARGUMENT', `refusing to fsfreeze the root filesystem (source ${path})`, { path });
  const env = { HOLDFAST_FREEZE_MOUNT: mount };
  const r = await runCommand('fsfreeze -f "$HOLDFAST_FREEZE_MOUNT"', timeoutMs, env);
  if (r.code !== 0) throw new HoldfastError('SOURCE_UNREADABLE', `fsfreeze -f ${mount} failed (${r.why}): ${r.stderr.trim()}`, { path });
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const watchdog = spawn('sh', ['-c', `sleep ${seconds}; fsfreeze -u "$HOLDFAST_FREEZE_MOUNT"`], { env: { ...process.env, ...env }, detached: true, stdio: 'ignore' });
  watchdog.unref();
  return async () => {
    try {
      if (watchdog.pid !== undefined) process.kill(-watchdog.pid, 'SIGKILL');
    } catch {
      // the watchdog already thawed it, or is gone
    }
    const t = await runCommand('fsfreeze -u "$HOLDFAST_FREEZE_MOUNT"', timeoutMs, env);
    if (t.code !== 0 && !/Invalid argument/.test(t.stderr)) throw new Error(`${t.why}: ${t.stderr.trim()}`);
  };
}
