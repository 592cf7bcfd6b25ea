/** holdfast backup --pool DIR --source NAME [--kind dir|image|btrfs] [--tracker T] [--state DIR] PATH */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import type { TrackerChoice } from '../../agent/sync-source.js';
import { localBackup, type LocalTracking } from '../local-engine.js';
import { info, printJson, progressBar, warn } from '../output.js';
import { interruptSignal, withPool } from '../pool-option.js';
import { stat } from 'node:fs/promises';

const KINDS = ['dir', 'image', 'btrfs'] as const;
const TRACKERS: readonly TrackerChoice[] = ['auto', 'full', 'qcow2-bitmap', 'btrfs'];

interface BackupOptions {
  pool: string;
  source: string;
  kind: string;
  json?: boolean;
  state?: string;
  tracker: string;
  qmp?: string;
  node?: string;
  nbdSocket?: string;
  snapshotDir?: string;
  preSnapshot?: string;
  postSnapshot?: string;
  quiesceTimeout: string;
  fsfreeze?: boolean;
}

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('back up a directory, an image file or a btrfs subvolume into a local storage pool as a new recovery point')
    .requiredOption('--pool <dir>', 'storage pool directory')
    .requiredOption('--source <name>', 'data source name (created on first backup)')
    .option('--kind <kind>', 'dir (a directory tree), image (a disk image file) or btrfs (a subvolume, read from a snapshot)', 'dir')
    .option('--tracker <name>', 'change tracker: auto, full (read everything, compare), qcow2-bitmap, btrfs', 'auto')
    .option('--state <dir>', 'change tracker state directory (default POOL/agent-state)')
    .option('--qmp <socket>', 'image served by a running QEMU: its QMP socket (bitmaps rotate and the image is fleeced through it)')
    .option('--node <name>', 'with --qmp: the node name of the image in QEMU')
    .option('--nbd-socket <socket>', 'with --qmp: the Unix socket of an NBD server QEMU already runs')
    .option('--snapshot-dir <dir>', 'btrfs: where read-only snapshots go (default SUBVOLUME/.holdfast-snapshots)')
    .option('--pre-snapshot <command>', 'run before the snapshot (sh -c), e.g. to quiesce an application')
    .option('--post-snapshot <command>', 'run after the snapshot, always')
    .option('--quiesce-timeout <seconds>', 'time limit of each command and of an fsfreeze', '60')
    .option('--fsfreeze', "freeze the source's filesystem while the snapshot is taken (for a plain directory: while it is read)")
    .option('--json', 'print the result as JSON')
    .argument('<path>', 'directory, image file or subvolume to back up')
    .action(async (path: string, opts: BackupOptions) => {
      const kind = KINDS.find((k) => k === opts.kind);
      if (!kind) throw new HoldfastError('BAD_ARGUMENT', `unknown kind '${opts.kind}' (use dir, image or btrfs)`);
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(opts.source)) {
        throw new HoldfastError('BAD_ARGUMENT', `source name '${opts.source}' must be 1-128 letters, digits, '.', '_' or '-'`);
      }
      const tracking = trackingOptions(opts, kind);
      await withPool(opts.pool, async (pool) => {
        const total = kind === 'image' ? await stat(path).then((s) => s.size, () => 0) : (pool.catalog.latestPoint(opts.source)?.logicalBytes ?? 0);
        const bar = progressBar(`backup ${opts.source}`, total, !opts.json);
        let r;
        try {
          r = await localBackup(pool, {
            source: opts.source,
            kind,
            path,
            tracking,
            signal: interruptSignal(),
            onProgress: (p) => bar.update(p.bytesDone, `${p.entries} entries`),
          });
        } finally {
          bar.stop();
        }
        for (const w of r.warnings) warn(w);
        for (const t of r.torn) warn(`${t}: changed on every read attempt; stored as last read and marked torn`);
        if (opts.json) printJson(r);
        else {
          info(r.point);
          process.stderr.write(
            `source ${r.source}: ${r.entries} entries, ${formatBytes(r.logicalBytes)} logical, ${formatBytes(r.readBytes)} read, ${formatBytes(r.newBytes)} new (${formatBytes(r.storedNewBytes)} stored) in ${(r.durationMs / 1000).toFixed(1)} s, tracker ${r.tracker}\n`,
          );
        }
      }, { warm: true, lazyIndex: true });
    });
}

function trackingOptions(opts: BackupOptions, kind: (typeof KINDS)[number]): LocalTracking {
  const tracker = TRACKERS.find((t) => t === opts.tracker);
  if (!tracker) throw new HoldfastError('BAD_ARGUMENT', `unknown tracker '${opts.tracker}' (use ${TRACKERS.join(', ')})`);
  if ((opts.qmp === undefined) !== (opts.node === undefined)) throw new HoldfastError('BAD_ARGUMENT', '--qmp and --node go together');
  if (opts.qmp !== undefined && kind !== 'image') throw new HoldfastError('BAD_ARGUMENT', '--qmp is for --kind image');
  const seconds = Number(opts.quiesceTimeout);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new HoldfastError('BAD_ARGUMENT', `--quiesce-timeout '${opts.quiesceTimeout}' is not a positive number of seconds`);
  return {
    stateDir: opts.state,
    tracker,
    qemu: opts.qmp !== undefined && opts.node !== undefined ? { qmpSocket: opts.qmp, node: opts.node, nbdSocket: opts.nbdSocket } : undefined,
    snapshotDir: opts.snapshotDir,
    preSnapshot: opts.preSnapshot,
    postSnapshot: opts.postSnapshot,
    timeoutMs: seconds * 1000,
    fsfreeze: opts.fsfreeze,
  };
}
