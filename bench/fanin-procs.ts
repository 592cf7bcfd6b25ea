/**
 * The fan-in benchmark's child processes (the server and the agents): each runs in its own
 * process group with its output in a log file, and every group still alive is killed when the
 * benchmark ends, fails or is interrupted (TERM, then KILL). Also reads what the kernel knows
 * of a process: peak and current RSS, CPU time, and the whole machine's busy time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';

/** A child process in its own process group. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** Calls `onLine` for each stdout/stderr line (the log gets them too). */
  onLine(listener: (line: string) => void): void;
}

const live = new Map<number, Child>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal); // not yet in its own group, or already gone
    } catch {
      // gone
    }
  }
}

// Last resort: whatever is still running when this process exits is killed with it.
process.on('exit', () => {
  for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
});

// Puts the process in a process group of its own (so it and anything it starts can be killed
// together) without a new session: a new session would also be a new scheduler autogroup
// (kernel.sched_autogroup_enabled), and autogroups share the CPU equally whatever the niceness
// of the processes inside, so 50 agents would each get as much CPU as the server.
const OWN_GROUP = ['perl', '-e', 'setpgrp(0, 0); exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\\n"'];

/**
 * Starts `argv` in a process group of its own (same session and autogroup as the benchmark),
 * stdout and stderr appended to `logPath`.
 */
export function startChild(name: string, argv: readonly string[], logPath: string): Child {
  if (argv.length === 0) throw new Error('empty command');
  const log = createWriteStream(logPath, { flags: 'a' });
  const [command = 'perl', ...args] = [...OWN_GROUP, ...argv];
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`cannot start ${name}: ${argv.join(' ')}`);
  const pid = proc.pid;
  const listeners: Array<(line: string) => void> = [];
  const split = (): ((chunk: Buffer) => void) => {
    let rest = '';
    return (chunk) => {
      log.write(chunk);
      if (listeners.length === 0) return;
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) for (const l of listeners) l(line);
    };
  };
  proc.stdout.on('data', split());
  proc.stderr.on('data', split());
  const exited = new Promise<number | string>((resolve) => {
    proc.on('close', (code, signal) => {
      live.delete(pid);
      log.end();
      resolve(code ?? signal ?? 'unknown');
    });
    proc.on('error', () => {
      live.delete(pid);
      resolve('spawn-error');
    });
  });
  const child: Child = { name, pid, process: proc, exited, onLine: (l) => listeners.push(l) };
  live.set(pid, child);
  return child;
}

/** Stops the given children (all live ones by default): TERM to each group, KILL after `graceMs`. */
export async function stopChildren(children: readonly Child[] = [...live.values()], graceMs = 10_000): Promise<void> {
  const running = children.filter((c) => live.has(c.pid));
  for (const c of running) killGroup(c.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const all = Promise.all(running.map((c) => c.exited));
  if ((await Promise.race([all, timeout])) === 'timeout') {
    for (const c of running) if (live.has(c.pid)) killGroup(c.pid, 'SIGKILL');
    await all;
  }
  clearTimeout(timer);
  // Worker threads die with their process, but a group may hold strays: make sure.
  for (const c of running) killGroup(c.pid, 'SIGKILL');
}

/** Live children, for a last check. */
export function liveChildren(): Child[] {
  return [...live.values()];
}

/** VmHWM (peak RSS) and VmRSS of a process in bytes; undefined once it is gone. */
export function memoryOf(pid: number): { peak: number; current: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { peak: kib('VmHWM'), current: kib('VmRSS') };
}

const TICKS = 100; // USER_HZ on Linux

/** User + system CPU seconds of a process (all its threads); undefined once it is gone. */
export function cpuOf(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Busy (non-idle, non-iowait) CPU seconds of the whole machine since boot, all cores. */
export function machineBusy(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + steal) / TICKS;
}
