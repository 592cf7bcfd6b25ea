/**
 * holdfast source add --group G --agent A --kind dir|image|btrfs|postgres|sqlite [tracker, quiesce and database options] NAME PATH;
 * source edit NAME [--group G] [the options of add; only those given change]; source list.
 */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { parseDuration } from '../../core/units.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, table } from '../output.js';

interface SourceFlags {
  tracker: string;
  qmp?: string;
  qemuNode?: string;
  snapshotDir?: string;
  preSnapshot?: string;
  postSnapshot?: string;
  quiesceTimeout: string;
  fsfreeze?: boolean;
  connect?: string;
  pgBin?: string;
  ship?: string;
}

interface SourceView {
  name: string;
  group: string;
  options?: { postgres?: { connect: string; bin?: string } };
  agent: string;
  kind: string;
  path: string;
  status: string;
  latestPoint: { id: string; time: string } | null;
}

export function registerSource(program: Command): void {
  const cmd = program.command('source').description('data sources: a directory or image on an agent, protected by a group');
  addServerOptions(
    cmd
      .command('add <name> <path>')
      .description('protect PATH on an agent as source NAME')
      .requiredOption('--group <group>', 'protection group')
      .requiredOption('--agent <agent>', 'agent that owns the data')
      .option('--kind <kind>', 'dir (a directory tree), image (a disk image file), btrfs (a subvolume, read from snapshots), postgres (a data directory) or sqlite (a database file)', 'dir')
      .option('--tracker <name>', 'change tracker: auto, full, qcow2-bitmap, btrfs', 'auto')
      .option('--qmp <socket>', 'image served by a running QEMU: its QMP socket (with --qemu-node)')
      .option('--qemu-node <name>', "the image's qcow2 node name in that QEMU")
      .option('--snapshot-dir <dir>', 'btrfs: where read-only snapshots go (default SUBVOLUME/.holdfast-snapshots)')
      .option('--pre-snapshot <command>', 'run before the snapshot is taken (to quiesce an application)')
      .option('--post-snapshot <command>', 'run after the snapshot is taken (always, even on failure)')
      .option('--quiesce-timeout <duration>', 'limit for each command and for fsfreeze', '60s')
      .option('--fsfreeze', 'freeze the filesystem while the snapshot is taken (filesystems without snapshots)')
      .option('--connect <conninfo>', "postgres: how the agent connects (libpq URL or conninfo, e.g. 'postgresql://postgres@/postgres?host=/run/postgresql')")
      .option('--pg-bin <dir>', "postgres: the directory of pg_ctl (default: found on the agent's host)")
      .option('--ship <mode>', "sqlite: ship WAL frames 'continuous'ly (every 250 ms, the default) or at the group's sync 'frequency'")
      .option('--json', 'machine-readable output'),
  ).action(async (name: string, path: string, opts: ServerOpts & SourceFlags & { group: string; agent: string; kind: string; json?: boolean }) => {
    if (!['dir', 'image', 'btrfs', 'postgres', 'sqlite'].includes(opts.kind)) throw new HoldfastError('BAD_ARGUMENT', `--kind must be dir, image, btrfs, postgres or sqlite, not '${opts.kind}'`);
    if (opts.kind === 'postgres' && !opts.connect) throw new HoldfastError('BAD_ARGUMENT', 'a postgres source needs --connect (how the agent reaches the database server)');
    if (opts.ship !== undefined && (opts.kind !== 'sqlite' || !['continuous', 'frequency'].includes(opts.ship))) {
      throw new HoldfastError('BAD_ARGUMENT', `--ship is for sqlite sources and is 'continuous' or 'frequency', not '${opts.ship}'`);
    }
    if ((opts.qmp === undefined) !== (opts.qemuNode === undefined)) throw new HoldfastError('BAD_ARGUMENT', '--qmp and --qemu-node go together');
    const options = {
      tracker: opts.tracker,
      ...(opts.qmp && opts.qemuNode ? { qemu: { qmpSocket: opts.qmp, node: opts.qemuNode } } : {}),
      ...(opts.snapshotDir ? { snapshotDir: opts.snapshotDir } : {}),
      ...(opts.preSnapshot ? { preSnapshot: opts.preSnapshot } : {}),
      ...(opts.postSnapshot ? { postSnapshot: opts.postSnapshot } : {}),
      timeoutMs: parseDuration(opts.quiesceTimeout),
      ...(opts.fsfreeze ? { fsfreeze: true } : {}),
      ...(opts.kind === 'postgres' && opts.connect ? { postgres: { connect: opts.connect, ...(opts.pgBin ? { bin: opts.pgBin } : {}) } } : {}),
      ...(opts.kind === 'sqlite' && opts.ship ? { sqlite: { ship: opts.ship as 'continuous' | 'frequency' } } : {}),
    };
    await withServer(opts, async (c) => {
      const s = await c.json<SourceView>('POST', '/api/v1/sources', { name, group: opts.group, agent: opts.agent, kind: opts.kind, path, options });
      if (opts.json) printJson(s);
      else info(`source '${s.name}' (${s.kind} ${s.path} on agent ${s.agent}) added to group '${s.group}'`);
    });
  });
  addServerOptions(
    cmd
      .command('edit <name>')
      .description("move a source to another group or change how its agent reads it (only the options given; '' removes an option); effective from its next sync")
      .option('--group <group>', 'protection group')
      .option('--tracker <name>', 'change tracker: auto, full, qcow2-bitmap, btrfs')
      .option('--qmp <socket>', 'image served by a running QEMU: its QMP socket (with --qemu-node; --qmp "" for none)')
      .option('--qemu-node <name>', "the image's qcow2 node name in that QEMU")
      .option('--snapshot-dir <dir>', 'btrfs: where read-only snapshots go')
      .option('--pre-snapshot <command>', 'run before the snapshot is taken')
      .option('--post-snapshot <command>', 'run after the snapshot is taken')
      .option('--quiesce-timeout <duration>', 'limit for each command and for fsfreeze')
      .option('--fsfreeze', 'freeze the filesystem while the snapshot is taken')
      .option('--no-fsfreeze', 'do not freeze the filesystem')
      .option('--connect <conninfo>', 'postgres: how the agent connects')
      .option('--pg-bin <dir>', 'postgres: the directory of pg_ctl')
      .option('--ship <mode>', "sqlite: 'continuous' or 'frequency'")
      .option('--json', 'machine-readable output'),
  ).action(async (name: string, opts: ServerOpts & Partial<SourceFlags> & { group?: string; json?: boolean }) => {
    const clear = <T>(v: T | undefined): T | null | undefined => (v === '' ? null : v);
    if (opts.ship !== undefined && opts.ship !== '' && !['continuous', 'frequency'].includes(opts.ship)) throw new HoldfastError('BAD_ARGUMENT', `--ship is 'continuous' or 'frequency', not '${opts.ship}'`);
    if (opts.qmp !== '' && (opts.qmp === undefined) !== (opts.qemuNode === undefined)) throw new HoldfastError('BAD_ARGUMENT', '--qmp and --qemu-node go together');
    await withServer(opts, async (c) => {
      const options: Record<string, unknown> = {
        tracker: clear(opts.tracker),
        qemu: opts.qmp === '' ? null : opts.qmp && opts.qemuNode ? { qmpSocket: opts.qmp, node: opts.qemuNode } : undefined,
        snapshotDir: clear(opts.snapshotDir),
        preSnapshot: clear(opts.preSnapshot),
        postSnapshot: clear(opts.postSnapshot),
        timeoutMs: opts.quiesceTimeout === undefined ? undefined : parseDuration(opts.quiesceTimeout),
        fsfreeze: opts.fsfreeze === false ? null : opts.fsfreeze,
        sqlite: opts.ship === undefined ? undefined : opts.ship === '' ? null : { ship: opts.ship },
      };
      if (opts.connect !== undefined || opts.pgBin !== undefined) {
        // connect and bin are one option: the one not given stays as it is
        const was = (await c.json<SourceView>('GET', `/api/v1/sources/${encodeURIComponent(name)}`)).options?.postgres;
        const connect = opts.connect ?? was?.connect ?? '';
        const bin = opts.pgBin === undefined ? was?.bin : opts.pgBin || undefined;
        options.postgres = { connect, ...(bin ? { bin } : {}) };
      }
      for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];
      const body = { ...(opts.group !== undefined ? { group: opts.group } : {}), ...(Object.keys(options).length ? { options } : {}) };
      if (Object.keys(body).length === 0) throw new HoldfastError('BAD_ARGUMENT', 'nothing to change: give at least one option (see holdfast source edit --help)');
      const s = await c.json<SourceView>('PATCH', `/api/v1/sources/${encodeURIComponent(name)}`, body);
      if (opts.json) printJson(s);
      else info(`source '${s.name}' (${s.kind} ${s.path} on agent ${s.agent}) is in group '${s.group}'`);
    });
  });
  addServerOptions(cmd.command('list').description('list sources with their protection status').option('--json', 'machine-readable output')).action(async (opts: ServerOpts & { json?: boolean }) => {
    await withServer(opts, async (c) => {
      const sources = await c.json<SourceView[]>('GET', '/api/v1/sources');
      if (opts.json) return printJson(sources);
      table(['NAME', 'GROUP', 'AGENT', 'KIND', 'PATH', 'STATUS', 'LATEST POINT'], sources.map((s) => [s.name, s.group, s.agent, s.kind, s.path, s.status, s.latestPoint?.time]));
    });
  });
}
