/**
 * Child processes started without fork (the addon's posix_spawn; see native/holdfast.c): Node's
 * spawn forks, which marks every page of this process copy-on-write, and the next write to each
 * page faults — as dear on these VMs as touching fresh memory. An agent that starts
 * qemu-storage-daemon or btrfs in the middle of a sync would pay that for every buffer it reuses.
 *
 * The result behaves like the part of Node's ChildProcess the trackers use: pid, stdin/stdout/
 * stderr streams for 'pipe', kill(), and the events 'error' (could not start, or aborted),
 * 'exit' (code, signal) and 'close' (code, signal) once the exit is known and the pipes have
 * ended. Without the addon's spawnProcess (an older build) it is Node's spawn.
 */
import { spawn as nodeSpawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { spawnProcess, type SpawnProcess } from './index.js';

export type StdioMode = 'ignore' | 'pipe';

export interface SpawnOptions {
  /** the whole environment of the child (default: this process's) */
  env?: NodeJS.ProcessEnv;
  /** a new session (and process group), as Node's `detached` */
  detached?: boolean;
  stdio?: [StdioMode, StdioMode, StdioMode];
  /** aborting kills the child (SIGTERM) and emits 'error' with an AbortError */
  signal?: AbortSignal;
}

export interface Child extends EventEmitter {
  readonly pid: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals | number): boolean;
}

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

class SpawnedChild extends EventEmitter implements Child {
  pid: number | undefined;
  stdin: Socket | null = null;
  stdout: Socket | null = null;
  stderr: Socket | null = null;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private exited = false;

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.pid === undefined || this.exited) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  start(spawn: SpawnProcess, file: string, args: string[], o: SpawnOptions): void {
    const stdio = o.stdio ?? ['ignore', 'ignore', 'ignore'];
    const mask = stdio.reduce((m, s, i) => (s === 'pipe' ? m | (1 << i) : m), 0);
    const env = o.env ? Object.entries(o.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])) : null;
    let fds;
    try {
      fds = spawn(file, [file, ...args], env, mask, o.detached ?? false, (code, sig) => this.onExit(code, sig));
    } catch (err) {
      // As Node's spawn: the error comes as an event, after the caller has attached its listeners.
      (err as NodeJS.ErrnoException).path ??= file;
      process.nextTick(() => this.emit('error', err));
      return;
    }
    this.pid = fds.pid;
    if (fds.stdin >= 0) this.stdin = new Socket({ fd: fds.stdin, readable: false, writable: true });
    if (fds.stdout >= 0) this.stdout = new Socket({ fd: fds.stdout, readable: true, writable: false });
    if (fds.stderr >= 0) this.stderr = new Socket({ fd: fds.stderr, readable: true, writable: false });
    // A child that exits without reading its input must not crash us with EPIPE.
    this.stdin?.on('error', () => undefined);
    const signal = o.signal;
    if (signal) {
      const onAbort = (): void => {
        this.kill('SIGTERM');
        const err = new Error('The operation was aborted');
        err.name = 'AbortError';
        (err as NodeJS.ErrnoException).code = 'ABORT_ERR';
        this.emit('error', err);
      };
      if (signal.aborted) process.nextTick(onAbort);
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('exit', () => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  private onExit(code: number, sig: number): void {
    this.exited = true;
    this.exitCode = sig === 0 ? code : null;
    this.signalCode = sig === 0 ? null : (signalNames.get(sig) ?? null);
    this.emit('exit', this.exitCode, this.signalCode);
    this.stdin?.destroy();
    // 'close' once the output pipes have ended too, as Node's.
    const open = [this.stdout, this.stderr].filter((s): s is Socket => s !== null && !s.closed);
    void Promise.all(open.map((s) => new Promise((resolve) => s.once('close', resolve)))).then(() => this.emit('close', this.exitCode, this.signalCode));
  }
}

/** Starts `file` (looked up in PATH) with `args`, without forking this process. */
export function spawnChild(file: string, args: string[], o: SpawnOptions = {}): Child {
  if (!spawnProcess) return nodeSpawn(file, args, { env: o.env, detached: o.detached, stdio: o.stdio ?? 'ignore', signal: o.signal }) as Child;
  const child = new SpawnedChild();
  child.start(spawnProcess, file, args, o);
  return child;
}
