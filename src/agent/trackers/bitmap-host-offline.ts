/**
 * Dirty bitmaps of a qcow2 image that no QEMU has open. Whatever changes the image (the snapshot
 * moment's rotation, the export of the frozen bitmap, the commit's removal) is done by one
 * qemu-storage-daemon we start, driven over QMP: one process per sync instead of a qemu-img run
 * per bitmap change and a qemu-nbd for the export. Questions (size, bitmaps) are answered from
 * the image's header without starting anything.
 *
 * The daemon (storage-daemon.ts; in an agent, often a spare started after the last sync) runs
 * under `setpriv --pdeathsig SIGTERM`: if the agent dies, the daemon quits cleanly and stores the
 * bitmaps (killed outright, it would leave them marked in use, which costs the next sync a full
 * read). Its pid file lets the next sync end one that outlived a crash.
 */
import { readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldfastError } from '../../core/errors.js';
import { NbdClient } from '../nbd/nbd-client.js';
import { rotationActions, type BitmapHost, type BitmapInfo, type ImageView } from './bitmap-host.js';
import { QmpClient, QmpCommandError } from './qmp-client.js';
import { runTool } from './run-tool.js';
import { readQcow2Header, type Qcow2Facts } from './qcow2-header.js';
import { Qcow2Clusters } from './qcow2-clusters.js';
import { launchDaemon, optValue, quitDaemon, refillSpare, takeSpare, type Daemon } from './storage-daemon.js';

interface QemuImgInfo {
  'virtual-size': number;
  format: string;
  'format-specific'?: { data?: { bitmaps?: Array<{ name: string; flags: string[] }> } };
}

const NODE = 'holdfast-disk';
const EXPORT = 'holdfast-export';

/** Daemons asked to quit and not yet gone, by the image's QMP socket name: the next one for the same image waits. */
const quitting = new Map<string, Promise<void>>();

export class OfflineBitmapHost implements BitmapHost {
  readonly mode = 'offline';
  private readonly qmpSocket: string;
  private readonly nbdSocket: string;
  private readonly pidFile: string;
  /** the image's header as last read; every bitmap change drops it */
  private header: Promise<Qcow2Facts> | undefined;
  /** the daemon of this sync, once asked for */
  private starting: Promise<Daemon> | undefined;

  constructor(
    private readonly image: string,
    private readonly workDir: string,
    tag: string,
    private readonly signal?: AbortSignal,
    /** told when a daemon was lost while opening the image and another was started */
    private readonly onWarning?: (message: string) => void,
  ) {
    this.qmpSocket = join(workDir, `${tag}.qsd.sock`);
    this.nbdSocket = join(workDir, `${tag}.nbd.sock`);
    this.pidFile = join(workDir, `${tag}.qsd.pid`);
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
    // Nothing else has the image open (the daemon holds its write lock), so nothing writes while
    // the sync reads. The frozen bitmaps are disabled all the same: QEMU exports a bitmap of a
    // writable node only when it is not recording.
    const qmp = await this.qmp();
    await this.run(qmp, 'transaction', { actions: rotationActions(NODE, add, freeze) });
    await this.remove(freeze.slice(1));
  }

  async open(bitmap: string | undefined): Promise<ImageView> {
    const qmp = await this.qmp();
    await rm(this.nbdSocket, { force: true });
    await this.run(qmp, 'nbd-server-start', { addr: { type: 'unix', data: { path: this.nbdSocket } } });
    await this.run(qmp, 'block-export-add', { type: 'nbd', id: EXPORT, 'node-name': NODE, name: EXPORT, writable: false, ...(bitmap ? { bitmaps: [bitmap] } : {}) });
    const contexts = bitmap ? [`qemu:dirty-bitmap:${bitmap}`, 'base:allocation'] : ['base:allocation'];
    // The image's own cluster map, read now that the daemon holds its lock (nothing else writes).
    const [nbd, clusters] = await Promise.all([
      NbdClient.connect(this.nbdSocket, { exportName: EXPORT, metaContexts: contexts, signal: this.signal }),
      Qcow2Clusters.open(this.image).catch(() => undefined),
    ]);
    return {
      nbd,
      read: async (offset, length, signal, into) => {
        // Whatever the map cannot serve (or an error reading it) goes through QEMU, which knows.
        const done = clusters ? await clusters.read(offset, length, into).catch(() => false) : false;
        return done ? into.subarray(0, length) : nbd.read(offset, length, signal, into);
      },
      close: async () => {
        void clusters?.close().catch(() => undefined);
        // Neither waited for: the daemon closes the connection as it quits, and it answers the
        // quit only once it has stored the bitmaps (30-70 ms); the next start for the image waits.
        void nbd.close().catch(() => undefined);
        await this.close();
      },
    };
  }

  async remove(names: string[]): Promise<void> {
    if (names.length === 0) return;
    const qmp = await this.qmp();
    for (const name of names) await this.run(qmp, 'block-dirty-bitmap-remove', { node: NODE, name });
  }

  async cleanup(): Promise<void> {
    // A daemon of a killed sync that did not follow its agent would hold the image's lock.
    const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      // Ours: a daemon whose sockets are in this state directory (a spare's name, or the image's).
      if (cmdline.includes('qemu-storage-daemon') && cmdline.includes(`path=${optValue(this.workDir)}/`)) {
        // TERM first: a daemon that quits stores the bitmaps; KILL only if it will not.
        const alive = async (): Promise<boolean> => (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')) === cmdline;
        signalPid(pid, 'SIGTERM');
        for (let i = 0; i < 200 && (await alive()); i++) await sleep(25);
        // Only while it is still that daemon: once gone, the pid may be another process's.
        if (await alive()) signalPid(pid, 'SIGKILL');
      }
    }
    await rm(this.pidFile, { force: true });
  }

  prepare(): void {
    this.qmp().catch(() => undefined); // rotate() meets the same start and its error
  }

  /**
   * Asks the daemon to quit (it stores the bitmaps and releases the image); with `wait`, returns
   * once it has exited. Without, the next start for this image waits for it instead: a sync need
   * not wait for the bitmaps to be written before it goes on with its manifest.
   */
  async close(wait = false): Promise<void> {
    const start = this.starting;
    this.starting = undefined;
    this.header = undefined;
    const d = await start?.catch(() => undefined);
    if (d) {
      const gone = quitDaemon(d).then(async () => {
        await Promise.all([rm(this.nbdSocket, { force: true }), rm(d.socket, { force: true }), rm(this.pidFile, { force: true })]);
      });
      quitting.set(this.qmpSocket, gone);
      void gone.finally(() => {
        if (quitting.get(this.qmpSocket) === gone) quitting.delete(this.qmpSocket);
      });
    }
    if (wait) {
      await quitting.get(this.qmpSocket);
      refillSpare(this.workDir); // the sync is over: the next one's daemon starts now, off its path
    }
  }

  private qmp(): Promise<QmpClient> {
    // A daemon lost while it opened the image (not one that refused: that is a QMP error) is
    // started once more; the second loss is the error, with what the daemon said.
    this.starting ??= this.start().catch((err: unknown) => {
      if (!(err instanceof DaemonLost) || this.signal?.aborted) throw err;
      this.onWarning?.(`${err.message}; started another, without io_uring`);
      return this.start(false);
    });
    return this.starting.then((d) => d.qmp);
  }

  /** A daemon (a spare if there is one) with the image open read-write, once the last one for this image has exited. */
  private async start(uring = true): Promise<Daemon> {
    const before = quitting.get(this.qmpSocket);
    if (before) await before;
    const spare = await takeSpare(this.workDir);
    // A spare's pid file becomes the image's, for cleanup() after a crash.
    if (spare) await rename(spare.pidFile, this.pidFile).catch(() => undefined);
    const d = spare?.daemon ?? (await launchDaemon(this.qmpSocket, this.pidFile, this.image, this.signal));
    const qmp = d.qmp;
    try {
      // Direct I/O through io_uring: a sync reads scattered extents the page cache seldom holds,
      // and copying them through it made each read dearer (1% of a 2 GiB image: job 0.54 →
      // 0.49 s). A file system without O_DIRECT (tmpfs) or a kernel without io_uring gets the default.
      const open = (file: Record<string, unknown>): Promise<void> => this.run(qmp, 'blockdev-add', { driver: 'qcow2', 'node-name': NODE, file: { driver: 'file', filename: this.image, ...file } });
      // The second start (after a daemon was lost) opens the plain way, in case io_uring was why.
      if (uring) await open({ aio: 'io_uring', cache: { direct: true } }).catch(() => open({}));
      else await open({});
    } catch (err) {
      await quitDaemon(d, 5_000);
      await Promise.all([rm(d.socket, { force: true }), rm(this.pidFile, { force: true })]);
      const out = d.child.stderr;
      if (out && !out.destroyed) await new Promise((resolve) => out.once('close', resolve)); // all it wrote
      if ((err as Error).cause instanceof QmpCommandError || this.signal?.aborted) throw err; // refused (run() wraps it), or aborted
      // The connection went with the daemon: say how it ended and what it wrote.
      throw new DaemonLost(this.image, `qemu-storage-daemon for ${this.image} was lost while opening it (${d.said()})`, { cause: err });
    }
    return d;
  }

  /** A QMP command whose failure names the image (and says when the image is in use). */
  private async run(qmp: QmpClient, command: string, args: Record<string, unknown>): Promise<void> {
    this.header = undefined;
    try {
      await qmp.execute(command, args);
    } catch (err) {
      if (!(err instanceof QmpCommandError)) throw err;
      const hint = /lock/i.test(err.desc) ? ' (the image is in use: back up a running VM through its QMP socket, --qmp)' : '';
      throw new HoldfastError('SOURCE_UNREADABLE', `${command} on ${this.image} failed${hint}: ${err.desc}`, { path: this.image }, { cause: err });
    }
  }
}

/** The daemon went away while it was starting (its connection was lost, not a command refused). */
class DaemonLost extends HoldfastError {
  constructor(image: string, message: string, options: { cause: unknown }) {
    super('SOURCE_UNREADABLE', message, { path: image }, options);
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}
