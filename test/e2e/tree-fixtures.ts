/**
 * Helpers shared by the end-to-end tests that build trees, watch a pool's state and run the CLI
 * in ways the basic harness does not: as another user, or as a child the test may kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, holdfast, type CliResult } from './cli-harness.js';

/** A small seeded PRNG (mulberry32), so a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Runs the CLI as another user (runuser), for permission cases that root would bypass. */
export function holdfastAs(user: string, args: string[]): Promise<CliResult> {
  return new Promise((res) => {
    const child = spawn('runuser', ['-u', user, '--', process.execPath, CLI, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => res({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

export interface RunningCli {
  child: ChildProcess;
  done: Promise<CliResult & { signal: NodeJS.Signals | null }>;
}

/** Starts the CLI and returns at once, so the caller can kill it or race it with other work. */
export function startHoldfast(args: string[]): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args]);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((res) => {
    child.on('close', (code, signal) => res({ code: code ?? 128, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Every file under dir (relative paths, sorted); [] when dir does not exist. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const visit = (abs: string, rel: string): void => {
    for (const name of readdirSync(abs).sort()) {
      const a = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(a).isDirectory()) visit(a, r);
      else out.push(r);
    }
  };
  if (existsSync(dir)) visit(dir, '');
  return out;
}

export interface PoolState {
  points: unknown;
  chunks: number;
  packs: number;
  /** files under packs/, index/ and points/: anything a backup would have written */
  files: string[];
}

/** What a user (and a test) looks at to see whether a command wrote anything to a pool. */
export async function poolState(pool: string, user?: string): Promise<PoolState> {
  const run = (args: string[]): Promise<CliResult> => (user ? holdfastAs(user, args) : holdfast(args));
  const [points, stats] = await Promise.all([run(['points', '--pool', pool, '--json']), run(['pool', 'stats', '--pool', pool, '--json'])]);
  if (points.code !== 0) throw new Error(`points on ${pool} exited ${points.code}: ${points.stderr}`);
  if (stats.code !== 0) throw new Error(`pool stats on ${pool} exited ${stats.code}: ${stats.stderr}`);
  const s = JSON.parse(stats.stdout) as { chunks: number; packs: number };
  const files = ['packs', 'index', 'points'].flatMap((d) => listFiles(join(pool, d)).map((f) => `${d}/${f}`));
  return { points: JSON.parse(points.stdout) as unknown, chunks: s.chunks, packs: s.packs, files };
}

/** A file of `size` random (incompressible) bytes. */
export function writeRandomFile(path: string, size: number): void {
  writeFileSync(path, randomBytes(size));
}

/**
 * A tree of `files` small files (0-48 KiB, some empty, some compressible) spread over nested
 * directories, plus an optional big file at the root.
 */
export function buildTree(root: string, rng: () => number, o: { files: number; bigFile?: number }): void {
  mkdirSync(root, { recursive: true });
  const dirs = ['.', 'a', 'a/b', 'a/b/c', 'd', 'd/e', 'f'];
  for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
  for (let i = 0; i < o.files; i++) {
    const dir = dirs[randInt(rng, 0, dirs.length - 1)] as string;
    writeSmallFile(join(root, dir, `file-${i}.dat`), rng);
  }
  if (o.bigFile) writeRandomFile(join(root, 'big.bin'), o.bigFile);
}

export function writeSmallFile(path: string, rng: () => number): void {
  const kind = rng();
  if (kind < 0.05) writeFileSync(path, '');
  else if (kind < 0.3) writeFileSync(path, `line ${Math.floor(rng() * 1e9)}\n`.repeat(randInt(rng, 1, 2000)));
  else writeFileSync(path, randomBytes(randInt(rng, 1, 48 * 1024)));
}

/**
 * Changes a tree the way users do between backups: rewrites some files, adds some, deletes some,
 * and changes part of the big file (sometimes all of it, sometimes its length).
 */
export function mutateTree(root: string, rng: () => number, o: { bigFile?: number } = {}): void {
  const files = listFiles(root).filter((f) => f !== 'big.bin');
  const pick = (): string | undefined => files[randInt(rng, 0, files.length - 1)];
  for (let i = randInt(rng, 1, 8); i > 0; i--) {
    const f = pick();
    if (f && existsSync(join(root, f))) writeSmallFile(join(root, f), rng);
  }
  for (let i = randInt(rng, 0, 5); i > 0; i--) {
    const f = pick();
    if (f) rmSync(join(root, f), { force: true });
  }
  const dirs = ['.', 'a', 'a/b', 'a/b/c', 'd', 'd/e', 'f', `new-${randInt(rng, 0, 3)}`];
  for (let i = randInt(rng, 0, 6); i > 0; i--) {
    const dir = join(root, dirs[randInt(rng, 0, dirs.length - 1)] as string);
    mkdirSync(dir, { recursive: true });
    writeSmallFile(join(dir, `added-${randomBytes(4).toString('hex')}.dat`), rng);
  }
  const big = join(root, 'big.bin');
  if (o.bigFile && existsSync(big)) {
    const r = rng();
    if (r < 0.15) writeRandomFile(big, o.bigFile + randInt(rng, -1, 1) * randInt(rng, 0, 1 << 20));
    else {
      const fd = openSync(big, 'r+');
      try {
        const size = fstatSync(fd).size;
        const len = randInt(rng, 1, 1 << 20);
        writeSync(fd, randomBytes(len), 0, len, randInt(rng, 0, Math.max(0, size - len)));
      } finally {
        closeSync(fd);
      }
    }
  }
}

/** True when every byte of the file is the same value (the torn-file writer's versions are). */
export function isUniform(path: string): { uniform: boolean; size: number; first: number | undefined } {
  const buf = readFileSync(path);
  const first = buf[0];
  if (first === undefined) return { uniform: true, size: 0, first };
  return { uniform: buf.equals(Buffer.alloc(buf.length, first)), size: buf.length, first };
}

/** Maps with at most `limit` calls in flight (CLI runs are mostly process start-up; overlap them). */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
