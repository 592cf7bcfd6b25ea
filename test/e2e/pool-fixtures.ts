/**
 * Helpers shared by the pool end-to-end tests: run the CLI and fail with its stderr, set
 * nanosecond times, write random files, flip bytes, list what exists outside a restore target,
 * and craft recovery points with hand-written manifests (bypassing the backup reader).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, lstatSync, openSync, readSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, type CliResult } from './cli-harness.js';
import { utimensNoFollow } from '../../src/native/index.js';
import { ManifestWriter } from '../../src/core/manifest-io.js';
import { encodeChunk } from '../../src/core/codec.js';
import { digestOf } from '../../src/core/digest.js';
import type { ChunkRef, Entry } from '../../src/core/manifest.js';
import type { Pool } from '../../src/pool/pool.js';
import type { PointRow } from '../../src/pool/catalog.js';

/** Runs the CLI and throws with its output unless it exits 0. */
export async function holdfastOk(args: string[]): Promise<CliResult> {
  const r = await holdfast(args);
  if (r.code !== 0) throw new Error(`holdfast ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** `holdfast pool init DIR`. */
export async function initPool(dir: string): Promise<void> {
  await holdfastOk(['pool', 'init', dir]);
}

/** Backs up `path` as a new recovery point of `source`; returns the point id. */
export async function backupPoint(pool: string, source: string, path: string): Promise<string> {
  const r = await holdfastOk(['backup', '--pool', pool, '--source', source, path, '--json']);
  const out = JSON.parse(r.stdout) as { point: string };
  return out.point;
}

/** Runs a tool synchronously (argument vector, no shell); returns stdout. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Sets atime and mtime (ns since the epoch) on the path itself, symlinks included. */
export function setMtimeNs(path: string, ns: bigint): void {
  utimensNoFollow(path, ns, ns);
}

/** Writes `size` random (incompressible, never deduplicated) bytes; returns them. */
export function writeRandomFile(path: string, size: number, mode = 0o644): Buffer {
  const data = randomBytes(size);
  writeFileSync(path, data, { mode });
  return data;
}

/** XORs one byte of a file in place (the file is made writable first and given back its mode). */
export function flipByte(path: string, offset: number): void {
  const mode = lstatSync(path).mode & 0o7777;
  chmodSync(path, 0o644);
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, offset) !== 1) throw new Error(`${path}: no byte at ${offset}`);
    b[0] = (b[0] as number) ^ 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, mode);
}

/** Every path under `root` (relative, sorted), not entering the directories named in `skip`. */
export function listTree(root: string, skip: string[] = []): string[] {
  const out: string[] = [];
  const visit = (abs: string, rel: string): void => {
    for (const name of readdirSync(abs).sort()) {
      const childAbs = join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (skip.includes(childAbs)) continue;
      out.push(childRel);
      if (lstatSync(childAbs).isDirectory()) visit(childAbs, childRel);
    }
  };
  visit(root, '');
  return out;
}

/** Plain metadata for a hand-written manifest entry. */
export function meta(path: string, mode = 0o644): { path: string; mode: number; uid: number; gid: number; mtimeNs: string } {
  return { path, mode, uid: 0, gid: 0, mtimeNs: '1600000000000000000' };
}

/**
 * Commits a recovery point of `source` whose manifest is exactly `entries`, written raw (no
 * type or path checks: the restorer must defend itself). `data` holds the contents to store as
 * chunks; `ref(data)` gives the reference to put in an entry.
 */
export async function craftPoint(pool: Pool, source: string, entries: object[], data: Buffer[] = []): Promise<PointRow> {
  const session = pool.startSession();
  const fresh = data.filter((d) => session.claim(digestOf(d)));
  await session.put(fresh.map((d) => ({ digest: digestOf(d), length: d.length, encoded: encodeChunk(d, 0) })));
  const writer = new ManifestWriter(session, 'dir');
  for (const e of entries) await writer.add(e as Entry);
  const manifest = await writer.finish();
  await session.finish();
  const row: PointRow = {
    id: randomBytes(6).toString('hex'),
    source,
    time: new Date().toISOString(),
    kind: 'dir',
    manifest,
    logicalBytes: data.reduce((n, d) => n + d.length, 0),
    files: entries.length,
    readBytes: 0,
    newBytes: 0,
    storedNewBytes: 0,
    durationMs: 0,
    parent: null,
    torn: 0,
  };
  await pool.commitPoint(row, '/src');
  return row;
}

/** The chunk reference of one whole-file chunk. */
export function ref(data: Buffer): ChunkRef {
  return [digestOf(data), data.length];
}
