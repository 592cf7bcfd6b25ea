/**
 * Dirty bitmaps of a qcow2 image that a running QEMU serves (a VM, or qemu-storage-daemon),
 * driven through QMP. The snapshot moment is one QMP transaction: add the new bitmap, stop the
 * old ones recording, and start image fleecing (`blockdev-backup sync=none` from the disk to a
 * temporary qcow2 overlay whose backing is the disk: every guest write first copies the old data
 * to the overlay, so the overlay reads as the disk at that moment). The overlay is exported over
 * NBD with the old bitmap, read, and torn down. Names are fixed per source, so a sync killed
 * half-way is cleaned up by the next one.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HoldfastError } from '../../core/errors.js';
import { NbdClient } from '../nbd/nbd-client.js';
import { rotationActions, type BitmapHost, type BitmapInfo, type ImageView } from './bitmap-host.js';
import { QmpClient, QmpCommandError } from './qmp-client.js';
import { runTool } from './run-tool.js';
import type { QemuLive } from './tracker.js';

interface NodeInfo {
  'node-name': string;
  image?: { 'virtual-size'?: number };
  'dirty-bitmaps'?: Array<{ name: string; recording: boolean; persistent: boolean; inconsistent?: boolean }>;
}

export class LiveBitmapHost implements BitmapHost {
  readonly mode = 'live';
  private readonly fleeceNode: string;
  private readonly jobId: string;
  private readonly exportId: string;
  private readonly overlay: string;
  private readonly ownSocket: string;

  private constructor(
    private readonly qmp: QmpClient,
    private readonly q: QemuLive,
    workDir: string,
    tag: string,
    private readonly signal?: AbortSignal,
  ) {
    this.fleeceNode = `holdfast-fleece-${tag}`;
    this.jobId = `holdfast-job-${tag}`;
    this.exportId = `holdfast-export-${tag}`;
    this.overlay = join(workDir, `${tag}.fleece.qcow2`);
    this.ownSocket = join(workDir, `${tag}.qmp-nbd.sock`);
  }

  static async connect(q: QemuLive, workDir: string, tag: string, signal?: AbortSignal): Promise<LiveBitmapHost> {
    return new LiveBitmapHost(await QmpClient.connect(q.qmpSocket, signal), q, workDir, tag, signal);
  }

  private async node(): Promise<NodeInfo> {
    const nodes = await this.qmp.execute<NodeInfo[]>('query-named-block-nodes', { flat: true });
    const n = nodes.find((x) => x['node-name'] === this.q.node);
    if (!n) throw new HoldfastError('SOURCE_UNREADABLE', `QEMU on ${this.q.qmpSocket} has no block node '${this.q.node}'`, { socket: this.q.qmpSocket });
    return n;
  }

  async virtualSize(): Promise<number> {
    const size = (await this.node()).image?.['virtual-size'];
    if (size === undefined) throw new HoldfastError('SOURCE_UNREADABLE', `QEMU does not report the size of node '${this.q.node}'`);
    return size;
  }

  async bitmaps(): Promise<BitmapInfo[]> {
    return ((await this.node())['dirty-bitmaps'] ?? [])
      .filter((b) => b.persistent)
      .map((b) => ({ name: b.name, enabled: b.recording, broken: b.inconsistent === true }));
  }

  async rotate(add: string, freeze: string[]): Promise<void> {
    const size = await this.virtualSize();
    await rm(this.overlay, { force: true });
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', this.overlay, String(size)], this.signal);
    await this.qmp.execute('blockdev-add', {
      driver: 'qcow2',
      'node-name': this.fleeceNode,
      file: { driver: 'file', filename: this.overlay },
      backing: this.q.node,
    });
    const node = this.q.node;
    const actions = [...rotationActions(node, add, freeze), { type: 'blockdev-backup', data: { device: node, target: this.fleeceNode, sync: 'none', 'job-id': this.jobId } }];
    await this.qmp.execute('transaction', { actions });
    await this.remove(freeze.slice(1));
  }

  async open(bitmap: string | undefined): Promise<ImageView> {
    let socket = this.q.nbdSocket;
    let started = false;
    if (!socket) {
      await rm(this.ownSocket, { force: true });
      try {
        await this.qmp.execute('nbd-server-start', { addr: { type: 'unix', data: { path: this.ownSocket } } });
      } catch (err) {
        if (err instanceof QmpCommandError && /already/i.test(err.desc)) {
          throw new HoldfastError('SOURCE_UNREADABLE', `QEMU on ${this.q.qmpSocket} already runs an NBD server: give its Unix socket (nbdSocket, --nbd-socket)`, { socket: this.q.qmpSocket }, { cause: err });
        }
        throw err;
      }
      socket = this.ownSocket;
      started = true;
    }
    await this.qmp.execute('block-export-add', {
      type: 'nbd',
      id: this.exportId,
      'node-name': this.fleeceNode,
      name: this.exportId,
      writable: false,
      ...(bitmap ? { bitmaps: [bitmap] } : {}),
    });
    const contexts = bitmap ? [`qemu:dirty-bitmap:${bitmap}`, 'base:allocation'] : ['base:allocation'];
    const nbd = await NbdClient.connect(socket, { exportName: this.exportId, metaContexts: contexts, signal: this.signal });
    return {
      nbd,
      close: async () => {
        await nbd.close().catch(() => undefined);
        await this.teardown(started);
      },
    };
  }

  async remove(names: string[]): Promise<void> {
    for (const name of names) await this.qmp.execute('block-dirty-bitmap-remove', { node: this.q.node, name });
  }

  async cleanup(): Promise<void> {
    // Our socket still there means a sync that started the server was killed before stopping it.
    const ours = !this.q.nbdSocket && (await stat(this.ownSocket).then(() => true, () => false));
    await this.teardown(ours);
  }

  prepare(): void {
    // the VM is running already
  }

  close(): Promise<void> {
    this.qmp.close();
    return Promise.resolve();
  }

  /** Export, fleecing job, overlay node and file: each removed if present, in that order. */
  private async teardown(stopServer: boolean): Promise<void> {
    await this.quiet('block-export-del', { id: this.exportId, mode: 'hard' });
    const jobs = await this.qmp.execute<Array<{ device: string }>>('query-block-jobs');
    if (jobs.some((j) => j.device === this.jobId)) {
      await this.quiet('block-job-cancel', { device: this.jobId, force: true });
      await this.qmp.waitEvent('JOB_STATUS_CHANGE', (d) => d.id === this.jobId && d.status === 'null', 30_000).catch(() => undefined);
    }
    // The export goes away asynchronously; the node is busy until it has.
    for (let i = 0; i < 100; i++) {
      const err = await this.quiet('blockdev-del', { 'node-name': this.fleeceNode });
      if (!err || /find node|not found/i.test(err.desc)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (stopServer) await this.quiet('nbd-server-stop', undefined);
    await rm(this.overlay, { force: true });
  }

  private async quiet(command: string, args: Record<string, unknown> | undefined): Promise<QmpCommandError | undefined> {
    try {
      await this.qmp.execute(command, args);
      return undefined;
    } catch (err) {
      if (err instanceof QmpCommandError) return err;
      throw err;
    }
  }
}
