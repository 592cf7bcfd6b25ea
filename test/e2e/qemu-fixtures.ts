/**
 * qcow2 fixtures for the tracker tests: an image written with qemu-io (offline) or through a
 * running qemu-storage-daemon's writable NBD export (the "VM"), and an in-memory model of the
 * guest disk that every write is applied to, so a test knows the exact bytes each recovery point
 * must restore. Needs qemu-utils (qemu-img, qemu-io, qemu-nbd) and qemu-system-common
 * (qemu-storage-daemon: the "VM", and what the offline tracker opens the image with).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmpClient } from '../../src/agent/trackers/qmp-client.js';
import { randInt } from './tree-fixtures.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
/** qemu's default dirty bitmap granularity (and qcow2 cluster size) */
export const GRANULE = 64 * KiB;

export function requireTools(...names: string[]): void {
  for (const name of names) {
    const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
    if (r.error || r.status !== 0) throw new Error(`'${name}' is not available: these tests need real tools (apt-get install qemu-utils qemu-system-common btrfs-progs)`);
  }
}

export interface Write {
  offset: number;
  length: number;
  data: Buffer;
}

/** Random writes: clustered 64 KiB runs and scattered 4 KiB ones, some of zeros (holes). */
export function randomWrites(rng: () => number, size: number, count: number): Write[] {
  const out: Write[] = [];
  for (let i = 0; i < count; i++) {
    const kind = rng();
    const length = kind < 0.4 ? 4 * KiB : kind < 0.8 ? 64 * KiB : randInt(rng, 1, 8) * 64 * KiB;
    const offset = Math.min(size - length, randInt(rng, 0, size / (4 * KiB) - 1) * 4 * KiB);
    // Offsets come from the seed (replayable); the bytes need only be fresh.
    const data = rng() < 0.1 ? Buffer.alloc(length) : randomBytes(length);
    out.push({ offset, length, data });
  }
  return out;
}

/** The guest disk as the test believes it is. */
export class DiskModel {
  readonly bytes: Buffer;
  constructor(readonly size: number) {
    this.bytes = Buffer.alloc(size);
  }
  apply(ws: Write[]): void {
    for (const w of ws) w.data.copy(this.bytes, w.offset);
  }
  digest(): string {
    return createHash('sha256').update(this.bytes).digest('hex');
  }
}

/** Bytes a dirty bitmap marks for these writes: whole granules, counted once. */
export function dirtyBytes(ws: Write[], size: number): number {
  const granules = new Set<number>();
  for (const w of ws) for (let g = Math.floor(w.offset / GRANULE); g * GRANULE < w.offset + w.length; g++) granules.add(g);
  let total = 0;
  for (const g of granules) total += Math.min(GRANULE, size - g * GRANULE);
  return total;
}

/** Writes through qemu-io: `target` is an image file, or --image-opts for an NBD export. */
export async function qemuIoWrite(dir: string, target: string[], ws: Write[]): Promise<void> {
  if (ws.length === 0) return;
  const cmds: string[] = [];
  ws.forEach((w, i) => {
    const f = join(dir, `w${i}.bin`);
    writeFileSync(f, w.data);
    cmds.push('-c', `write -q -s ${f} ${w.offset} ${w.length}`);
  });
  // A killed sync's qemu-storage-daemon holds the image's lock until it has quit.
  for (let attempt = 0; ; attempt++) {
    const r = await runAsync('qemu-io', [...target, ...cmds]);
    if (r.code === 0 && !/error|failed/i.test(r.output)) return;
    if (attempt > 100 || !/lock/i.test(r.output)) throw new Error(`qemu-io failed: ${r.output}`);
    await sleep(50);
  }
}

/** Not spawnSync: a sync running meanwhile must keep being watched (its exit, a kill timer). */
function runAsync(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => resolve({ code: 127, output: err.message }));
    child.on('close', (code) => resolve({ code: code ?? 128, output }));
  });
}

export function offlineTarget(image: string): string[] {
  return ['-f', 'qcow2', image];
}

/** A "VM": qemu-storage-daemon serving the image, with QMP and a writable NBD export. */
export class StorageDaemon {
  readonly qmpSocket: string;
  readonly nbdSocket: string;
  readonly node = 'disk0';
  private child: ChildProcess | undefined;

  constructor(
    readonly image: string,
    dir: string,
  ) {
    this.qmpSocket = join(dir, 'qmp.sock');
    this.nbdSocket = join(dir, 'vm-nbd.sock');
  }

  get target(): string[] {
    return ['--image-opts', `driver=nbd,server.type=unix,server.path=${this.nbdSocket},export=vm`];
  }

  async start(): Promise<void> {
    this.child = spawn(
      'qemu-storage-daemon',
      [
        '--blockdev', `driver=file,node-name=file0,filename=${this.image}`,
        '--blockdev', `driver=qcow2,node-name=${this.node},file=file0`,
        '--nbd-server', `addr.type=unix,addr.path=${this.nbdSocket}`,
        '--export', `type=nbd,id=vmexp,node-name=${this.node},name=vm,writable=on`,
        '--chardev', `socket,path=${this.qmpSocket},server=on,wait=off,id=qmp0`,
        '--monitor', 'chardev=qmp0',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    for (let i = 0; i < 200 && !(existsSync(this.qmpSocket) && existsSync(this.nbdSocket)); i++) await sleep(25);
  }

  /** Quits through QMP (so bitmaps are written back to the image), or kills it. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      const q = await QmpClient.connect(this.qmpSocket);
      await q.execute('quit').catch(() => undefined);
      q.close();
    } catch {
      child.kill('SIGKILL');
    }
    await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
  }
}
