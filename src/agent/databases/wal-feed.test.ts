/**
 * The WAL feed of a PostgreSQL restore and its restore_command script, run as PostgreSQL runs it
 * (/bin/sh, the real script): a name outside the chain is "no such file" at once; a listed name
 * is waited for until the fetcher has put it in place, then copied byte for byte; a failed fetch
 * makes the script abort recovery (exit 127, fatal to PostgreSQL) rather than report the end of
 * the archive; a stopped feed leaves no partial file. The chunk source hands out chunks encoded
 * by the real codec workers, as the server stores them, and can hold a read back or damage one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, existsSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChunkSource } from '../../core/chunk-io.js';
import type { StoredChunk } from '../../core/codec.js';
import type { ChunkRef } from '../../core/manifest.js';
import { HoldfastError } from '../../core/errors.js';
import { CodecPool } from '../../workers/codec-pool.js';
import { logFrames } from '../remote/log-shipper.js';
import { feedWal, writeRestoreCommand, FAILED_FILE } from './wal-feed.js';

/** Stored chunks by digest; reads of a digest in `held` wait until it is released. */
class StoredChunks implements ChunkSource {
  chunks = new Map<string, StoredChunk>();
  held = new Map<string, Promise<void>>();
  damaged = new Set<string>();
  read(): Promise<Uint8Array[]> {
    throw new Error('the feed reads chunks as stored');
  }
  async readEncoded(refs: ChunkRef[]): Promise<StoredChunk[]> {
    for (const [d] of refs) await this.held.get(d);
    return refs.map(([d]) => {
      const c = this.chunks.get(d);
      if (!c) throw new HoldfastError('CHUNK_MISSING', `chunk ${d} is missing`);
      const data = new Uint8Array(c.data);
      if (this.damaged.has(d)) data[data.length >> 1] = (data[data.length >> 1] ?? 0) ^ 0xff;
      return { ...c, data };
    });
  }
}

/** The script as PostgreSQL runs it (system(): /bin/sh -c), without blocking the feed. */
const runScript = (script: string, name: string, to: string, as?: { uid: number; gid: number }): Promise<{ code: number | null; stderr: string; ms: number }> =>
  new Promise((resolve) => {
    const t = Date.now();
    const c = spawn('/bin/sh', ['-c', script.replace('%f', name).replace('%p', to)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000, ...as });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('exit', (code) => resolve({ code, stderr, ms: Date.now() - t }));
  });

test('restore_command waits for each listed segment the feed fetches, refuses names outside the chain, aborts when fetching fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-walfeed-'));
  const codec = new CodecPool(2);
  try {
    const source = new StoredChunks();
    const logs: Array<{ name: string; manifest: ChunkRef[]; bytes: Buffer }> = [];
    const names = ['00000002.history', '000000010000000000000003', '000000010000000000000004', '000000010000000000000005'];
    for (const name of names) {
      const bytes = name.endsWith('.history') ? Buffer.from('1\t0/3000000\tno recovery target specified\n') : randomBytes(3 * 1024 * 1024 + 17);
      const frames = await logFrames(codec, bytes);
      for (const f of frames) source.chunks.set(f.digest, { digest: f.digest, length: f.length, flags: f.flags, data: f.data });
      logs.push({ name, manifest: frames.map((f) => [f.digest, f.length] as ChunkRef), bytes });
    }
    const walDir = join(dir, 'data.holdfast-wal');
    const out = join(dir, 'pg_wal');
    spawnSync('mkdir', ['-p', walDir, out]);
    const script = await writeRestoreCommand(walDir, names, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });

    // The last segment's first chunk is held back: the script must wait for it, not give up.
    let release!: () => void;
    const last = logs[3] as { manifest: ChunkRef[] };
    source.held.set(last.manifest[0]?.[0] as string, new Promise<void>((r) => (release = r)));
    const feed = feedWal({ source, codec, logs, dir: walDir, durable: false });
    const waiting = runScript(script, names[3] as string, join(out, 'RECOVERYXLOG'));
    for (const [i, name] of names.slice(0, 3).entries()) {
      const r = await runScript(script, name, join(out, `got-${i}`));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readFileSync(join(out, `got-${i}`)), logs[i]?.bytes, `${name} copied byte for byte`);
    }
    const notListed = await runScript(script, '000000010000000000000006', join(out, 'x'));
    assert.equal(notListed.code, 1, 'past the end of the chain: no such file');
    assert.ok(notListed.ms < 5000, 'answered at once');
    assert.equal((await runScript(script, '00000003.history', join(out, 'x'))).code, 1, 'a timeline PostgreSQL probes for');
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!existsSync(join(out, 'RECOVERYXLOG')), 'still waiting for the held segment');
    release();
    const w = await waiting;
    assert.equal(w.code, 0, w.stderr);
    assert.deepEqual(readFileSync(join(out, 'RECOVERYXLOG')), logs[3]?.bytes);
    assert.equal(await feed.done, logs.reduce((n, l) => n + l.bytes.length, 0));
    assert.equal(feed.fetched(), 4);

    // A damaged chunk: the feed fails, and the script aborts recovery instead of ending it early.
    rmSync(walDir, { recursive: true });
    spawnSync('mkdir', ['-p', walDir]);
    const script2 = await writeRestoreCommand(walDir, names, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
    source.damaged.add(logs[2]?.manifest[1]?.[0] as string);
    const failing = feedWal({ source, codec, logs, dir: walDir, durable: true });
    await assert.rejects(failing.done, /CHUNK_CORRUPT|damaged/);
    assert.ok(existsSync(join(walDir, FAILED_FILE)));
    const aborted = await runScript(script2, names[2] as string, join(out, 'y'));
    assert.equal(aborted.code, 127, 'fatal to PostgreSQL, not the end of the archive');
    assert.match(aborted.stderr, /fetching 000000010000000000000004 failed: CHUNK_CORRUPT/);
    await failing.stop();
    assert.deepEqual(readdirSync(walDir).filter((n) => n.endsWith('.part')), [], 'no partial file left');

    // Held after the first log until released (PostgreSQL started): then the rest comes.
    source.damaged.clear();
    rmSync(walDir, { recursive: true });
    spawnSync('mkdir', ['-p', walDir]);
    const gated = feedWal({ source, codec, logs, dir: walDir, durable: false, holdAfter: 1 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(gated.fetched(), 1, 'only the first before release');
    gated.release();
    await gated.done;
    assert.equal(gated.fetched(), 4);

    // Stopped while a read is held: done rejects as stopped, no failure mark, nothing partial.
    source.damaged.clear();
    rmSync(walDir, { recursive: true });
    spawnSync('mkdir', ['-p', walDir]);
    source.held.set(last.manifest[0]?.[0] as string, new Promise<void>((r) => setTimeout(r, 500)));
    const stopped = feedWal({ source, codec, logs, dir: walDir, durable: false });
    await new Promise((r) => setTimeout(r, 100));
    await stopped.stop();
    assert.ok(!existsSync(join(walDir, FAILED_FILE)), 'a stop is not a failure');
    assert.deepEqual(readdirSync(walDir).filter((n) => n.endsWith('.part')), []);
  } finally {
    await codec.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('segments go to the cluster owner: restore_command links them once they are its own, copies them while they are root\'s', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (chown, and the script run as another user)');
  const pgUser = { uid: 65534, gid: 65534 }; // nobody: PostgreSQL's user stand-in
  const dir = mkdtempSync(join(tmpdir(), 'hf-walfeed-own-'));
  chmodSync(dir, 0o755);
  const codec = new CodecPool(2);
  try {
    const source = new StoredChunks();
    const names = ['000000010000000000000007', '000000010000000000000008', '000000010000000000000009'];
    const logs: Array<{ name: string; manifest: ChunkRef[]; bytes: Buffer }> = [];
    for (const name of names) {
      const bytes = randomBytes(1024 * 1024 + 5);
      const frames = await logFrames(codec, bytes);
      for (const f of frames) source.chunks.set(f.digest, { digest: f.digest, length: f.length, flags: f.flags, data: f.data });
      logs.push({ name, manifest: frames.map((f) => [f.digest, f.length] as ChunkRef), bytes });
    }
    const walDir = join(dir, 'data.holdfast-wal');
    const out = join(dir, 'pg_wal');
    for (const d of [walDir, out]) {
      mkdirSync(d, { mode: 0o700 });
      chownSync(d, pgUser.uid, pgUser.gid);
    }
    const script = await writeRestoreCommand(walDir, names, pgUser);
    const feed = feedWal({ source, codec, logs, dir: walDir, durable: false, holdAfter: 1 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(feed.fetched(), 1);
    // Fetched before the owner was known: root's, so copied (a link would be a root-owned file
    // in pg_wal that PostgreSQL could not recycle).
    const copied = await runScript(script, names[0] as string, join(out, 'RECOVERYXLOG'), pgUser);
    assert.equal(copied.code, 0, copied.stderr);
    const c = statSync(join(out, 'RECOVERYXLOG'));
    assert.notEqual(c.ino, statSync(join(walDir, names[0] as string)).ino, 'a copy');
    assert.equal(c.uid, pgUser.uid);
    assert.deepEqual(readFileSync(join(out, 'RECOVERYXLOG')), logs[0]?.bytes);
    await feed.setOwner(pgUser);
    assert.equal(statSync(join(walDir, names[0] as string)).uid, pgUser.uid, 'fetched earlier: chowned by setOwner');
    feed.release();
    await feed.done;
    for (const [i, name] of names.entries()) {
      const st = statSync(join(walDir, name));
      assert.equal(st.uid, pgUser.uid, `${name} is the owner's`);
      if (i === 0) continue;
      const to = join(out, `got-${i}`);
      const r = await runScript(script, name, to, pgUser);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(statSync(to).ino, st.ino, `${name} linked, not copied`);
      assert.deepEqual(readFileSync(to), logs[i]?.bytes);
    }
    await feed.removeLogs();
    assert.deepEqual(readdirSync(walDir).filter((n) => names.includes(n)), [], 'the feed\'s names are gone after recovery');
    assert.deepEqual(readFileSync(join(out, 'got-2')), logs[2]?.bytes, 'PostgreSQL\'s link keeps the data');
  } finally {
    await codec.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
