/**
 * qemu-storage-daemon processes for offline images: started with no image open, driven over QMP.
 * A start costs 20-60 ms before the daemon listens, more when its binary and libraries have left
 * the page cache, and it was on every qcow2 sync's path. A long-running agent therefore keeps a
 * spare one per state directory, started after a sync has committed: the next sync there takes it
 * instead of starting one. A spare holds no image and no lock.
 *
 * Daemons run under `setpriv --pdeathsig SIGTERM`: if the agent dies, they quit cleanly and store
 * the bitmaps of an image they have open.
 */
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldfastError } from '../../core/errors.js';
import { spawnChild, type Child } from '../../native/spawn.js';
import { QmpClient } from './qmp-client.js';

export interface Daemon {
  child: Child;
  qmp: QmpClient;
  exited: Promise<void>;
  /** the QMP socket it listens on (a spare's own name when it was started ahead) */
  socket: string;
  /** how it ended, if it has, and what it wrote to stderr */
  said(): string;
  alive(): boolean;
}

/** QEMU's option syntax: a comma in a value is written twice. */
export const optValue = (s: string): string => s.replaceAll(',', ',,');

/**
 * Starts a daemon listening for QMP on `socket` and connects to it. `what` names the image it
 * is for in errors.
 */
export async function launchDaemon(socket: string, pidFile: string, what: string, signal?: AbortSignal): Promise<Daemon> {
  // Synchronous, so the daemon starts now rather than after whatever the caller does next.
  rmSync(socket, { force: true });
  const args = ['--chardev', `socket,id=holdfast-qmp,path=${optValue(socket)},server=on,wait=off`, '--monitor', 'chardev=holdfast-qmp', '--pidfile', pidFile];
  // Started without fork (native/spawn.ts): this is on a sync's path.
  const child = spawnChild('setpriv', ['--pdeathsig', 'SIGTERM', '--', 'qemu-storage-daemon', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let exited = false;
  let status = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<void>((resolve) => {
    child.on('exit', (code: number | null, sig: NodeJS.Signals | null) => {
      exited = true;
      status = sig ? `killed by ${sig}` : `exit status ${code}`;
      resolve();
    });
    child.on('error', (err: Error) => {
      exited = true;
      stderr += err.message;
      resolve();
    });
  });
  const said = (): string => `${status || 'still running'}${stderr.trim() ? `: ${stderr.trim()}` : ''}`;
  let qmp: QmpClient | undefined;
  for (let i = 0; !qmp; i++) {
    if (exited) {
      const missing = /No such file|not found/i.test(stderr) ? 'qemu-storage-daemon is not installed (Debian package qemu-system-common)' : stderr.trim();
      throw new HoldfastError('SOURCE_UNREADABLE', `cannot open ${what}: ${missing}`, { path: what });
    }
    try {
      qmp = await QmpClient.connect(socket, signal);
    } catch (err) {
      if (i > 2000 || signal?.aborted) {
        child.kill('SIGKILL');
        throw err;
      }
      // It listens some 20-60 ms after it starts: poll finely.
      await sleep(5);
    }
  }
  return { child, qmp, exited: exit, socket, said, alive: () => !exited };
}

/** Asks a daemon to quit and waits until it has (killed if it will not within `ms`). */
export async function quitDaemon(d: Daemon, ms = 30_000): Promise<void> {
  const timer = setTimeout(() => d.child.kill('SIGKILL'), ms);
  await d.qmp.execute('quit').catch(() => undefined);
  d.qmp.close();
  await d.exited;
  clearTimeout(timer);
}

interface Spare {
  daemon: Promise<Daemon | undefined>;
  pidFile: string;
}

const spares = new Map<string, Spare>();
let keep = false;

/** Turns spare daemons on (a long-running agent) or off (quitting those waiting). */
export async function keepSpareDaemons(on: boolean): Promise<void> {
  keep = on;
  if (on) return;
  const all = [...spares.values()];
  spares.clear();
  await Promise.all(all.map((s) => discard(s)));
}

/** Starts a spare daemon for `workDir` if spares are on and none is there. */
export function refillSpare(workDir: string): void {
  if (!keep || spares.has(workDir)) return;
  const id = randomBytes(4).toString('hex');
  const socket = join(workDir, `spare-${id}.qsd.sock`);
  const pidFile = join(workDir, `spare-${id}.qsd.pid`);
  const daemon = launchDaemon(socket, pidFile, 'a spare qemu-storage-daemon').catch(() => undefined);
  spares.set(workDir, { daemon, pidFile });
}

/** The spare daemon of `workDir`, if one is there and alive; the caller owns it (and `pidFile` is then its pid file). */
export async function takeSpare(workDir: string): Promise<{ daemon: Daemon; pidFile: string } | undefined> {
  const s = spares.get(workDir);
  if (!s) return undefined;
  spares.delete(workDir);
  const d = await s.daemon;
  if (d?.alive()) return { daemon: d, pidFile: s.pidFile };
  await discard(s);
  return undefined;
}

async function discard(s: Spare): Promise<void> {
  const d = await s.daemon;
  if (d) {
    await quitDaemon(d, 5_000);
    await rm(d.socket, { force: true });
  }
  await rm(s.pidFile, { force: true });
}
