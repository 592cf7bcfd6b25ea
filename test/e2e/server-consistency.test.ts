/**
 * `holdfast sync --consistency-check [--heavy]` through a real server and agent: the check
 * compares the source with the latest recovery point, reports what differs, sends only that,
 * and the repaired point restores equal to the source.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, scratch, snapshotTree } from './cli-harness.js';
import { listFiles } from './tree-fixtures.js';
import { buildTree, prng } from './tree-fixtures.js';
import { TestAgent, TestServer } from './server-harness.js';

interface SyncJson {
  point: string;
  logicalBytes: number;
  readBytes: number;
  sentBytes: number;
  tracker: string;
  check: { added: number; changed: number; removed: number; mismatched: number } | null;
}

describe('consistency check through the server', { timeout: 300_000 }, () => {
  const tmp = scratch('holdfast-check-');
  let server: TestServer;
  let agent: TestAgent;
  const src = join(tmp.dir, 'data');

  before(async () => {
    buildTree(src, prng(77), { files: 60 });
    server = await TestServer.start(join(tmp.dir, 'server'));
    agent = await TestAgent.start(server, 'checked', join(tmp.dir, 'agent'));
    await server.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'checked', 'docs', src]);
    await server.json(['sync', 'docs', '--wait']);
  });

  after(async () => {
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('light: compares metadata, reports what changed, reads only that', async () => {
    const [f1, f2, f3] = listFiles(src).filter((f) => f.endsWith('.dat'));
    writeFileSync(join(src, 'new-1.txt'), 'one');
    writeFileSync(join(src, 'a', 'new-2.txt'), 'two');
    writeFileSync(join(src, f1 as string), 'rewritten content');
    rmSync(join(src, f2 as string));
    renameSync(join(src, f3 as string), join(src, 'moved.dat'));
    const r = await server.json<SyncJson>(['sync', 'docs', '--wait', '--consistency-check']);
    assert.equal(r.tracker, 'full');
    assert.ok(r.check, 'the result reports findings');
    assert.equal(r.check.added, 3, 'two new files and one renamed');
    assert.equal(r.check.removed, 2, 'one deleted and one renamed away');
    assert.equal(r.check.changed, 1);
    // Read: the new, rewritten and moved files only (a moved file has no parent entry at its new path).
    const expected = ['new-1.txt', 'a/new-2.txt', f1 as string, 'moved.dat'].reduce((n, f) => n + statSync(join(src, f)).size, 0);
    assert.equal(r.readBytes, expected, `read ${r.readBytes} bytes`);
    const to = join(tmp.dir, 'light');
    await server.json(['restore', '--source', 'docs', '--to', to]);
    assert.deepEqual(diffSnapshots(snapshotTree(src), snapshotTree(to)), []);
  });

  it('heavy: re-reads and hashes every file, finds nothing new, sends nothing', async () => {
    const r = await server.json<SyncJson>(['sync', 'docs', '--wait', '--consistency-check', '--heavy']);
    assert.equal(r.readBytes, r.logicalBytes, 'every byte was read');
    assert.deepEqual(r.check, { added: 0, changed: 0, removed: 0, mismatched: 0 });
    assert.ok(r.sentBytes < 64 * 1024, `sent ${r.sentBytes} bytes (the manifest at most)`);
    const bad = await server.cli(['sync', 'docs', '--heavy']);
    assert.notEqual(bad.code, 0, '--heavy alone is refused');
  });
});
