/**
 * pg_backup_stop on a real cluster whose archive_command fails: the express full gives up after
 * its wait and says why (pg_stat_archiver's last failure), instead of waiting forever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { isHoldfastError } from '../../core/errors.js';
import { freePort } from './free-port.js';
import { stopBackup } from './postgres-backup.js';

const BIN = '/usr/lib/postgresql/15/bin';
const skip = !existsSync(join(BIN, 'initdb')) || process.getuid?.() !== 0 ? 'needs root and PostgreSQL 15 (postgresql-15)' : false;

test('pg_backup_stop gives up when archive_command keeps failing, naming the failed segment', { skip, timeout: 120_000 }, async () => {
  const ids = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  const dir = mkdtempSync(join(tmpdir(), 'hf-pgstop-'));
  chownSync(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const pgCtl = (...a: string[]): void => void spawnSync(join(BIN, 'pg_ctl'), ['-D', data, ...a], { ...ids, cwd: dir, stdio: 'ignore' });
  try {
    execFileSync(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { ...ids, cwd: dir, stdio: 'ignore' });
    appendFileSync(join(data, 'postgresql.conf'), `\nport = ${port}\nunix_socket_directories = '${dir}'\nlisten_addresses = ''\nwal_level = replica\narchive_mode = on\narchive_command = 'false'\n`);
    pgCtl('-w', '-l', join(dir, 'log'), 'start');
    const client = new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      await client.query("SELECT pg_backup_start('test', true)");
      const started = Date.now();
      await assert.rejects(stopBackup(client, 150000, 'db', 2000), (err: unknown) => {
        assert.ok(isHoldfastError(err), String(err));
        assert.match(err.message, /source 'db': pg_backup_stop waited 2 s .* archive_command has failed \d+ time\(s\), last for [0-9A-F]{24}/);
        return true;
      });
      assert.ok(Date.now() - started < 30_000, 'gave up near its wait, not later');
      // The session is usable again and holds no backup: a new one can start.
      await client.query("SELECT pg_backup_start('again', true)");
    } finally {
      await client.end();
    }
  } finally {
    pgCtl('-m', 'immediate', '-w', 'stop');
    rmSync(dir, { recursive: true, force: true });
  }
});
