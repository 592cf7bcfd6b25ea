/**
 * Dirty bitmaps of a qcow2 image that no QEMU has open: `qemu-img bitmap` changes them and a
 * `qemu-nbd` we start exports the image read-only with one bitmap exposed (`-B`). Without `-t`
 * qemu-nbd exits when our one connection closes, so a killed agent leaves no server behind once
 * connected; its pid file lets the next sync end one that never got a client.
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldfastError } from '../../core/errors.js';
import { NbdClient } from '../nbd/nbd-client.js';
import type { BitmapHost, BitmapInfo, ImageView } from './bitmap-host.js';
import { runTool } from './run-tool.js';
import { readQcow2Header, type Qcow2Facts } from './qcow2-header.js';

interface QemuImgInfo {
  'virtual-size': number;
  format: string;
  'format-specific'?: { data?: { bitmaps?: Array<{ name: string; flags: string[] }> } };
}

export class OfflineBitmapHost implements BitmapHost {
  readonly mode = 'offline';
  private readonly socket: string;
  private readonly pidFile: string;
  /** the image's header as last read; every bitmap change drops it (one qemu-img info per sync, not per question) */
  private header: Promise<Qcow2Facts> | undefined;

  constructor(
    private readonly image: string,
    workDir: string,
    tag: string,
    private readonly signal?: AbortSignal,
  ) {
    this.socket = join(workDir, `${tag}.nbd.sock`);
    this.pidFile = join(workDir, `${tag}.nbd.pid`);
  }

  private info(): Promise<Qcow2Facts> {
    // Read from the header itself; qemu-img only for what that reader does not know. -U: reading
    // the header must work even while a VM holds the image (then rotate() says so).
    this.header ??= readQcow2Header(this.image).then(
      async (facts) =>
        facts ??
        runTool('qemu-img', ['info', '-U', '--output=json', this.image], this.signal).then((out) => {
          const i = JSON.parse(out) as QemuImgInfo;
          const list = i['format-specific']?.data?.bitmaps ?? [];
          return { virtualSize: i['virtual-size'], bitmaps: list.map((b) => ({ name: b.name, enabled: b.flags.includes('auto'), broken: b.flags.includes('in-use') })) };
        }),
    );
    const h = this.header;
    h.catch(() => {
      if (this.header === h) this.header = undefined; // asked again next time
    });
    return h;
  }

  async virtualSize(): Promise<number> {
    return (await this.info()).virtualSize;
  }

  async bitmaps(): Promise<BitmapInfo[]> {
    return (await this.info()).bitmaps;
  }

  async rotate(add: string, freeze: string[]): Promise<void> {
    // The image is not open anywhere (qemu-img takes the write lock and fails otherwise), so the
    // steps need not be atomic: nothing writes between them. The frozen bitmaps are not disabled:
    // the sync reads through our own read-only qemu-nbd, so nothing writes while it reads, and a
    // bitmap that goes on recording after that only records more than needed until the commit
    // removes it (one qemu-img run per sync instead of two).
    await this.bitmap(['--add', '--enable'], add);
    const [into, ...rest] = freeze;
    if (into === undefined) return;
    for (const name of rest) await this.bitmap(['--merge', name], into);
    await this.remove(rest);
  }

  async open(bitmap: string | undefined): Promise<ImageView> {
    await rm(this.socket, { force: true });
    const args = ['-r', '-f', 'qcow2', '-k', this.socket, '--pid-file', this.pidFile, ...(bitmap ? ['-B', bitmap] : []), this.image];
    // setpriv --pdeathsig: if the agent is killed before it connects, qemu-nbd must not outlive
    // it holding the image's lock (a VM could not start).
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'qemu-nbd', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exited = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', () => (exited = true));
    child.on('error', (err) => {
      exited = true;
      stderr += err.message;
    });
    const contexts = bitmap ? [`qemu:dirty-bitmap:${bitmap}`, 'base:allocation'] : ['base:allocation'];
    for (let i = 0; ; i++) {
      if (exited) throw new HoldfastError('SOURCE_UNREADABLE', `qemu-nbd could not export ${this.image}: ${stderr.trim()}`, { path: this.image });
      try {
        const nbd = await NbdClient.connect(this.socket, { metaContexts: contexts, signal: this.signal });
        return {
          nbd,
          close: async () => {
            await nbd.close().catch(() => undefined);
            if (!exited) child.kill('SIGTERM');
            await rm(this.socket, { force: true });
            await rm(this.pidFile, { force: true });
          },
        };
      } catch (err) {
        if (i > 1000) {
          child.kill('SIGKILL');
          throw err;
        }
        // qemu-nbd listens some 20-40 ms after it starts: poll finely, it is on every sync's path.
        await sleep(5);
      }
    }
  }

  async remove(names: string[]): Promise<void> {
    for (const name of names) await this.bitmap(['--remove'], name);
  }

  async cleanup(): Promise<void> {
    // A qemu-nbd of a killed sync that never got its client would hold the image forever.
    const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('qemu-nbd') && cmdline.includes(this.socket)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
      await sleep(50);
    }
    await rm(this.pidFile, { force: true });
  }

  close(): void {
    // nothing held between commands
  }

  private async bitmap(op: string[], name: string): Promise<void> {
    this.header = undefined;
    try {
      await runTool('qemu-img', ['bitmap', ...op, '-f', 'qcow2', this.image, name], this.signal);
    } catch (err) {
      const msg = (err as Error).message;
      const hint = /lock/i.test(msg) ? ' (the image is in use: back up a running VM through its QMP socket, --qmp)' : '';
      throw new HoldfastError('SOURCE_UNREADABLE', `qemu-img bitmap ${op.join(' ')} ${name} on ${this.image} failed${hint}: ${msg}`, { path: this.image }, { cause: err });
    }
  }
}
