/**
 * A server whose pool sits on a small loop-mounted ext4 file system: a sync that does not fit
 * fails with POOL_FULL and raises the critical `pool-full` alert (and the pool's 90% warning);
 * nothing stored is harmed; gc through the server gives the failed sync's packs back, and the
 * next successful sync resolves the alert.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { scratch, sh } from './cli-harness.js';
import { writeRandomFile } from './tree-fixtures.js';
import { TestAgent, TestServer, until, type JobJson } from './server-harness.js';

const MiB = 1024 * 1024;
const canMount = process.getuid?.() === 0 && spawnSync('mkfs.ext4', ['-V']).status === 0;

interface AlertJson {
  kind: string;
  severity: string;
  state: string;
  message: string;
}

test('a full pool fails the sync with POOL_FULL and alerts; gc through the server makes room; the next sync resolves it', { skip: !canMount && 'needs root and mkfs.ext4', timeout: 300_000 }, async () => {
  const s = scratch('holdfast-maint-full-');
  const dir = (n: string): string => join(s.dir, n);
  const img = dir('fs.img');
  let mounted = false;
  let server: TestServer | undefined;
  let agent: TestAgent | undefined;
  try {
    sh('truncate', ['-s', '64M', img]);
    sh('mkfs.ext4', ['-q', '-F', img]);
    mkdirSync(dir('mnt'));
    sh('mount', ['-o', 'loop', img, dir('mnt')]);
    mounted = true;
    // Only the pool is on the small file system; the control catalog stays outside it.
    mkdirSync(join(dir('mnt'), 'pool'));
    mkdirSync(dir('server'));
    symlinkSync(join(dir('mnt'), 'pool'), join(dir('server'), 'pool'));
    server = await TestServer.start(dir('server'), ['--gc-every', 'off', '--verify-every', 'off', '--usage-every', '2s']);
    agent = await TestAgent.start(server, 'f1', dir('agent'));
    const srv = server;
    const active = async (): Promise<AlertJson[]> => (await srv.json<AlertJson[]>(['alerts'])).filter((a) => a.state === 'active');

    for (const n of ['a', 'c']) mkdirSync(dir(n));
    writeRandomFile(join(dir('a'), 'data.bin'), 16 * MiB);
    writeRandomFile(join(dir('c'), 'data.bin'), 56 * MiB);
    const aData = readFileSync(join(dir('a'), 'data.bin'));
    await srv.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
    await srv.cliOk(['source', 'add', '--group', 'g', '--agent', 'f1', 'a', dir('a')]);
    await srv.cliOk(['source', 'add', '--group', 'g', '--agent', 'f1', 'c', dir('c')]);
    const first = await srv.json<{ point: string }>(['sync', 'a', '--wait']);

    const r = await srv.cli(['sync', 'c', '--wait', '--json']);
    assert.equal(r.code, 7, `expected POOL_FULL (exit 7): ${r.stderr}`);
    assert.match(r.stderr, /out of space/);
    // Its automatic re-run fails the same way; wait for it, so that it cannot fail later.
    await until('the re-run to fail', async () => (await srv.json<JobJson[]>(['jobs', '--source', 'c'])).filter((j) => j.state === 'failed').length >= 2, 60_000, 500);
    const full = (await active()).find((a) => a.kind === 'pool-full');
    assert.ok(full, 'no pool-full alert');
    assert.equal(full.severity, 'critical');
    await until('the 90% pool warning', async () => (await active()).some((a) => a.kind === 'pool-capacity'), 30_000, 500);

    // Nothing stored is harmed.
    const v = await srv.json<{ ok: boolean }>(['verify', '--full']);
    assert.equal(v.ok, true);
    await srv.json(['restore', '--source', 'a', '--point', first.point, '--to', dir('restored')]);
    assert.ok(readFileSync(join(dir('restored'), 'data.bin')).equals(aData), 'a restores bit-exact');

    // gc gives back what the failed syncs wrote; a sync that fits resolves the alert.
    const gc = await srv.json<{ bytesFreed: number; leftovers: { bytes: number } }>(['gc']);
    assert.ok(gc.bytesFreed > 8 * MiB, `gc freed ${gc.bytesFreed}: ${JSON.stringify(gc)}`);
    await until('the pool warning to resolve', async () => !(await active()).some((a) => a.kind === 'pool-capacity'), 30_000, 500);
    writeRandomFile(join(dir('a'), 'more.bin'), MiB);
    await srv.json(['sync', 'a', '--wait']);
    assert.ok(!(await active()).some((a) => a.kind === 'pool-full'), 'the pool-full alert resolved');
  } finally {
    await agent?.kill();
    await server?.kill();
    if (mounted) spawnSync('umount', ['-l', dir('mnt')]);
    s.cleanup();
  }
});
