/**
 * The file-version index benchmark (`npm run bench:versions`): one source with 100 recovery
 * points of 100,000 files (1% of files change per point, a few appear and disappear), indexed
 * through VersionIndex.indexPoint, then "every version of this file" asked through FileVersions
 * exactly as the portal asks it (with a user's permission check: the file and every parent, per
 * point), and a name search. Prints build time, index size and query latencies; the target is
 * under 200 ms per query. Options: --files N --points N --queries N --dir DIR.
 */
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Entry } from '../src/core/manifest.js';
import type { Pool } from '../src/pool/pool.js';
import { FileVersions } from '../src/server/file-versions.js';
import { VersionIndex } from '../src/server/version-index.js';

const { values } = parseArgs({
  options: { files: { type: 'string', default: '100000' }, points: { type: 'string', default: '100' }, queries: { type: 'string', default: '200' }, dir: { type: 'string' } },
});
const FILES = Number(values.files);
const POINTS = Number(values.points);
const QUERIES = Number(values.queries);
const SOURCE = 'home';
const D1 = 10;
const D2 = 10;

/** A deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const filePath = (i: number): string => `u${String(i % D1).padStart(2, '0')}/d${String(Math.floor(i / D1) % D2).padStart(2, '0')}/f${String(i).padStart(6, '0')}.dat`;
const digest = (i: number, gen: number): string => (i.toString(16).padStart(8, '0') + gen.toString(16).padStart(8, '0')).repeat(4);

/** The state of every file: its generation (bumped on change) or -1 when absent. */
function* entriesOf(gen: Int32Array, pointNo: number): Generator<Entry> {
  const t = String(1_700_000_000_000_000_000n + BigInt(pointNo) * 3_600_000_000_000n);
  yield { type: 'dir', path: '.', mode: 0o755, uid: 0, gid: 0, mtimeNs: t };
  // Walk order: u00, u00/d00, u00/d00/f..., u00/d01, ...
  const byDir = new Map<string, number[]>();
  for (let i = 0; i < gen.length; i++) {
    if ((gen[i] as number) < 0) continue;
    const p = filePath(i);
    const dir = p.slice(0, p.lastIndexOf('/'));
    let list = byDir.get(dir);
    if (!list) byDir.set(dir, (list = []));
    list.push(i);
  }
  for (let a = 0; a < D1; a++) {
    const u = `u${String(a).padStart(2, '0')}`;
    yield { type: 'dir', path: u, mode: 0o750, uid: 1000 + a, gid: 100, mtimeNs: t };
    for (let b = 0; b < D2; b++) {
      const d = `${u}/d${String(b).padStart(2, '0')}`;
      yield { type: 'dir', path: d, mode: 0o755, uid: 1000 + a, gid: 1000 + a, mtimeNs: t };
      for (const i of byDir.get(d) ?? []) {
        const g = gen[i] as number;
        const size = 1000 + ((i * 7919 + g * 104729) % 50_000);
        yield { type: 'file', path: filePath(i), mode: 0o640, uid: 1000 + a, gid: 100, mtimeNs: String(1_600_000_000_000_000_000n + BigInt(g) * 1_000_000_000n), size, chunks: [[digest(i, g), size]] };
      }
    }
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};
const ms = (n: number): string => `${n.toFixed(2)} ms`;

async function main(): Promise<void> {
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'holdfast-versions-bench-'));
  const file = join(dir, 'versions.sqlite');
  if (existsSync(file)) rmSync(file);
  const index = new VersionIndex(file);
  const rnd = prng(42);
  const gen = new Int32Array(FILES);
  const points: Array<{ id: string; time: string }> = [];
  console.log(`file-version index: ${POINTS} recovery points of ${FILES.toLocaleString('en')} files (1% change per point)`);
  const t0 = performance.now();
  let changedRows = 0;
  for (let p = 0; p < POINTS; p++) {
    if (p > 0) {
      for (let k = 0; k < FILES / 100; k++) gen[Math.floor(rnd() * FILES)] = (gen[Math.floor(rnd() * FILES)] ?? 0) + 1; // changes
      for (let k = 0; k < FILES / 2000; k++) gen[Math.floor(rnd() * FILES)] = -1; // deletions
      for (let k = 0; k < FILES / 2000; k++) {
        const i = Math.floor(rnd() * FILES);
        if ((gen[i] as number) < 0) gen[i] = p; // re-creations
      }
    }
    const point = { id: `p${String(p).padStart(4, '0')}`, time: new Date(Date.UTC(2026, 0, 1) + p * 3_600_000).toISOString() };
    points.push(point);
    const r = await index.indexPoint(SOURCE, point, entriesOf(gen, p));
    changedRows += r.changed;
    if (p % 10 === 9 || p === POINTS - 1) console.log(`  indexed ${p + 1} points (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const buildMs = performance.now() - t0;
  index.db.pragma('wal_checkpoint(TRUNCATE)');
  const rows = (sql: string): number => (index.db.prepare(sql).get() as { n: number }).n;
  const size = statSync(file).size;

  // The live catalog as FileVersions sees it: every point still there.
  const fakePool = { catalog: { pointHeads: () => points, sources: () => [] } } as unknown as Pool;
  const versions = new FileVersions(index, fakePool, { warn: () => undefined });
  await versions.ready();
  const lat: number[] = [];
  const found: number[] = [];
  for (let q = 0; q < QUERIES; q++) {
    const i = Math.floor(rnd() * FILES);
    const who = { uid: 1000 + (i % D1), gids: [100, 1000 + (i % D1)] };
    const t = performance.now();
    const v = await versions.pointVersions(SOURCE, filePath(i), who);
    lat.push(performance.now() - t);
    found.push(v.length);
  }
  const denied: number[] = [];
  for (let q = 0; q < 50; q++) {
    const i = Math.floor(rnd() * FILES);
    const t = performance.now();
    const v = await versions.pointVersions(SOURCE, filePath(i), { uid: 5000, gids: [5000] });
    denied.push(performance.now() - t);
    if (v.length > 0) throw new Error('a stranger saw a version: the permission check is broken');
  }
  const search: number[] = [];
  for (let q = 0; q < 20; q++) {
    const i = Math.floor(rnd() * FILES);
    const t = performance.now();
    await versions.search([SOURCE], `f${String(i).padStart(6, '0')}`, { uid: 1000 + (i % D1), gids: [100] }, 50);
    search.push(performance.now() - t);
  }
  const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
  console.log('');
  console.log(`build:            ${(buildMs / 1000).toFixed(1)} s (${ms(buildMs / POINTS)} per point of ${FILES.toLocaleString('en')} files)`);
  console.log(`index size:       ${mib(size)} on disk; ${rows('SELECT count(*) n FROM vi_paths').toLocaleString('en')} paths, ${rows('SELECT count(*) n FROM vi_versions').toLocaleString('en')} version rows (${changedRows.toLocaleString('en')} written) for ${(POINTS * FILES).toLocaleString('en')} file-points`);
  console.log(`versions of a file (owner, with permission checks, ${QUERIES} queries, avg ${(found.reduce((a, b) => a + b, 0) / found.length).toFixed(1)} points each):`);
  console.log(`                  p50 ${ms(pct(lat, 50))}  p95 ${ms(pct(lat, 95))}  max ${ms(Math.max(...lat))}`);
  console.log(`refused (stranger, 50 queries): p50 ${ms(pct(denied, 50))}  max ${ms(Math.max(...denied))}`);
  console.log(`search by name (20 queries):    p50 ${ms(pct(search, 50))}  max ${ms(Math.max(...search))}`);
  const worst = Math.max(...lat, ...denied);
  console.log(`target: every versions query under 200 ms: ${worst < 200 ? 'met' : 'MISSED'} (worst ${ms(worst)})`);
  index.close();
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}

await main();
