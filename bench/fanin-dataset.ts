/**
 * The fan-in benchmark's data: one folder per agent (`data/a000`, `data/a001`, …), each
 * `mib` MiB in a few hundred files whose sizes are log-uniform between 1 KiB and 2 MiB.
 * Files up to 64 KiB are wholly random or wholly text-like; larger ones are runs of 16–512 KiB
 * of random bytes (about 45%), text-like words (about 45%, zstd compresses them about
 * five-fold) and zeros (about 10%). The bytes depend only on (seed, set number, mib), so every
 * set is distinct from the others and the same on every run and machine. A set is regenerated
 * only when its marker (kept outside the data tree) does not match; sets beyond the requested
 * count are removed, so `data/` holds exactly the sets of this run.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fillContent } from './content.js';
import type { ContentKind } from './content.js';
import { progress } from './log.js';
import { Prng } from './prng.js';

/** Bumped whenever generation changes the bytes it writes for the same parameters. */
export const FANIN_DATA_FORMAT = 1;
const SEED = 0x46616e49; // "FanI"
const KiB = 1024;
const MiB = 1024 * KiB;
const MIN_FILE = 1 * KiB;
const MAX_FILE = 2 * MiB;
const WHOLE_FILE_MAX = 64 * KiB;
const RUN_MIN = 16 * KiB;
const RUN_MAX = 512 * KiB;
const FOLDERS = 16;

/** One file of a set: path relative to the set's folder, size, and the PRNG stream of its bytes. */
export interface FaninFile {
  readonly path: string;
  readonly size: number;
  /** 'mixed': runs of random, text and zero content. */
  readonly kind: ContentKind | 'mixed';
  readonly stream: number;
}

/** What decides one set's bytes. */
interface SetSpec {
  readonly format: number;
  readonly seed: number;
  readonly index: number;
  readonly mib: number;
}

/** The folder name of set number `index`. */
export function setName(index: number): string {
  return `a${String(index).padStart(3, '0')}`;
}

// Streams: layout draws and each file's content are kept apart (index < 2048, file < 2^20).
const layoutStream = (index: number): number => index * 2;
const contentStream = (index: number, file: number): number => (index * 2 ** 20 + file) * 2 + 1;

/** The files of set `index` for a set of `mib` MiB; sizes add up exactly to `mib` MiB. */
export function planSet(index: number, mib: number): FaninFile[] {
  const prng = new Prng(SEED, layoutStream(index));
  const total = Math.round(mib * MiB);
  const files: FaninFile[] = [];
  const logMin = Math.log(MIN_FILE);
  const logSpan = Math.log(MAX_FILE) - logMin;
  for (let used = 0; used < total; ) {
    const drawn = Math.round(Math.exp(logMin + (prng.below(1 << 30) / 2 ** 30) * logSpan));
    const size = Math.min(drawn, total - used);
    const coin = prng.below(2) === 0;
    const kind: FaninFile['kind'] = size > WHOLE_FILE_MAX ? 'mixed' : coin ? 'random' : 'text';
    const n = files.length;
    const ext = kind === 'mixed' ? 'dat' : kind === 'text' ? 'txt' : 'bin';
    const path = `d${String(n % FOLDERS).padStart(2, '0')}/f${String(n).padStart(5, '0')}.${ext}`;
    files.push({ path, size, kind, stream: contentStream(index, n) });
    used += size;
  }
  return files;
}

/** Fills `out` with the file's bytes. */
function fillFile(file: FaninFile, out: Uint8Array): void {
  const prng = new Prng(SEED, file.stream);
  if (file.kind !== 'mixed') {
    fillContent(file.kind, out, prng);
    return;
  }
  for (let at = 0; at < out.length; ) {
    const pick = prng.below(20);
    const kind: ContentKind = pick < 9 ? 'random' : pick < 18 ? 'text' : 'zero';
    // Runs start word-aligned so random fills take the fast path.
    const length = Math.min(out.length - at, prng.between(RUN_MIN / 4096, RUN_MAX / 4096) * 4096);
    fillContent(kind, out.subarray(at, at + length), prng);
    at += length;
  }
}

async function readMarker(path: string): Promise<SetSpec | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as SetSpec;
  } catch {
    return undefined;
  }
}

/** Where the data sets live under the work folder. */
export interface FaninDataLayout {
  /** holds exactly the sets of this run: the single-agent source */
  readonly dataDir: string;
  readonly markersDir: string;
}

export function faninDataLayout(workDir: string): FaninDataLayout {
  return { dataDir: join(workDir, 'data'), markersDir: join(workDir, 'markers') };
}

/** Makes `data/` hold exactly sets 0..count-1 of `mib` MiB each; returns their folders. */
export async function ensureSets(layout: FaninDataLayout, count: number, mib: number, signal: AbortSignal): Promise<string[]> {
  await mkdir(layout.dataDir, { recursive: true });
  await mkdir(layout.markersDir, { recursive: true });
  const wanted = new Set(Array.from({ length: count }, (_, i) => setName(i)));
  for (const name of await readdir(layout.dataDir)) {
    if (!wanted.has(name)) {
      await rm(join(layout.markersDir, `${name}.json`), { force: true });
      await rm(join(layout.dataDir, name), { recursive: true, force: true });
    }
  }
  const buffer = Buffer.alloc(MAX_FILE); // own ArrayBuffer at offset 0: word-aligned fills
  const dirs: string[] = [];
  let generated = 0;
  const started = Date.now();
  for (let index = 0; index < count; index++) {
    signal.throwIfAborted();
    const name = setName(index);
    const dir = join(layout.dataDir, name);
    const markerPath = join(layout.markersDir, `${name}.json`);
    const spec: SetSpec = { format: FANIN_DATA_FORMAT, seed: SEED, index, mib };
    dirs.push(dir);
    if (JSON.stringify(await readMarker(markerPath)) === JSON.stringify(spec)) continue;
    await rm(markerPath, { force: true });
    await rm(dir, { recursive: true, force: true });
    for (let f = 0; f < FOLDERS; f++) await mkdir(join(dir, `d${String(f).padStart(2, '0')}`), { recursive: true });
    for (const file of planSet(index, mib)) {
      const bytes = buffer.subarray(0, file.size);
      fillFile(file, bytes);
      await writeFile(join(dir, file.path), bytes);
    }
    await writeFile(markerPath, `${JSON.stringify(spec)}\n`);
    generated++;
    if (generated % 10 === 0) progress(`generated ${generated} data sets`);
  }
  if (generated > 0) progress(`generated ${generated} data set(s) of ${mib} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  else progress(`${count} data sets of ${mib} MiB present in ${layout.dataDir}; not regenerating`);
  return dirs;
}
