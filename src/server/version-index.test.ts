import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../core/manifest.js';
import type { Pool } from '../pool/pool.js';
import { FileVersions } from './file-versions.js';
import { VersionIndex } from './version-index.js';

const D = 'a'.repeat(64);
const B = 'b'.repeat(64);
const dir = (path: string, mode = 0o755, uid = 0): Entry => ({ type: 'dir', path, mode, uid, gid: 0, mtimeNs: '1' });
/** A fresh file-version index for one test, closed and removed after it. */
async function withIndex(fn: (index: VersionIndex) => Promise<void>): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'vi-'));
  const index = new VersionIndex(join(tmp, 'v.sqlite'));
  try {
    await fn(index);
  } finally {
    index.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** FileVersions over the index, with these points live in the catalog. */
const versionsOver = (index: VersionIndex, live: Array<{ id: string; time: string }>): FileVersions =>
  new FileVersions(index, { catalog: { pointHeads: () => live, sources: () => [] } } as unknown as Pool, { warn: () => undefined });

const file = (path: string, digest: string, size: number, mode = 0o644, uid = 1000): Entry => ({ type: 'file', path, mode, uid, gid: 1000, mtimeNs: '2', size, chunks: [[digest, size]] });

test('a row per change: unchanged files extend their version, changed and vanished ones close it', () =>
  withIndex(async (index) => {
    const points = [1, 2, 3, 4].map((n) => ({ id: `p${n}`, time: `2026-01-0${n}T00:00:00.000Z` }));
    const pts = points as Array<{ id: string; time: string }>;
    await index.indexPoint('s', pts[0] as { id: string; time: string }, [dir('.'), dir('home', 0o711), file('home/a.txt', D, 5), file('home/b.txt', D, 5)]);
    await index.indexPoint('s', pts[1] as { id: string; time: string }, [dir('.'), dir('home', 0o711), file('home/a.txt', B, 7), file('home/b.txt', D, 5)]);
    await index.indexPoint('s', pts[2] as { id: string; time: string }, [dir('.'), dir('home', 0o700), file('home/a.txt', B, 7)]);
    await index.indexPoint('s', pts[3] as { id: string; time: string }, [dir('.'), dir('home', 0o711), file('home/a.txt', B, 7), file('home/b.txt', D, 5)]);
    const a = index.versions(index.pathId('s', 'home/a.txt') as number);
    assert.deepEqual(a.map((v) => [v.first, v.last, v.size]), [[1, 1, 5], [2, null, 7]]);
    const b = index.versions(index.pathId('s', 'home/b.txt') as number);
    assert.deepEqual(b.map((v) => [v.first, v.last]), [[1, 2], [4, null]], 'gone in point 3, back in point 4');
    assert.equal((index.db.prepare('SELECT count(*) n FROM vi_versions').get() as { n: number }).n, 8, 'only changes are rows (. 1, home 3, a 2, b 2)');

    // Point 2 was pruned; home was not searchable for others in point 3.
    const fv = versionsOver(index, [pts[0], pts[2], pts[3]] as Array<{ id: string; time: string }>);
    const all = await fv.pointVersions('s', 'home/a.txt');
    assert.deepEqual(all.map((v) => [v.point, v.size, v.changed]), [['p1', 5, true], ['p3', 7, true], ['p4', 7, false]]);
    const owner = await fv.pointVersions('s', 'home/a.txt', { uid: 1000, gids: [1000] });
    assert.deepEqual(owner.map((v) => v.point), ['p1', 'p4'], 'not at p3, where home was 0700 root');
    assert.deepEqual(await fv.pointVersions('s', 'home/a.txt', { uid: 1001, gids: [1001] }).then((x) => x.map((v) => v.point)), ['p1', 'p4'], 'a 0644 file is readable by others');
    // home is 0711 (search only) for others: its files are readable by name but not listed by a search.
    assert.deepEqual(await fv.search(['s'], 'b.txt', { uid: 1001, gids: [1001] }), []);
    assert.deepEqual(await fv.search(['s'], 'b.txt', undefined).then((x) => x[0]?.versions.map((v) => v.point)), ['p1', 'p4']);
    await fv.close();
  }));

test('an unchanged point keeps every open version open without reading entries; a later change still closes them', () =>
  withIndex(async (index) => {
    const at = (n: number): { id: string; time: string } => ({ id: `p${n}`, time: `2026-01-0${n}T00:00:00.000Z` });
    await index.indexPoint('s', at(1), [dir('.'), file('a.txt', D, 5), file('b.txt', D, 5)]);
    index.indexUnchanged('s', at(2));
    index.indexUnchanged('s', at(3));
    await index.indexPoint('s', at(4), [dir('.'), file('a.txt', B, 7)]);
    assert.deepEqual(index.points('s').map((p) => [p.seq, p.point]), [[1, 'p1'], [2, 'p2'], [3, 'p3'], [4, 'p4']]);
    const a = index.versions(index.pathId('s', 'a.txt') as number);
    assert.deepEqual(a.map((v) => [v.first, v.last, v.size]), [[1, 3, 5], [4, null, 7]]);
    const b = index.versions(index.pathId('s', 'b.txt') as number);
    assert.deepEqual(b.map((v) => [v.first, v.last]), [[1, 3]], 'gone in point 4');
  }));

test('a search is bounded by time, not by candidates: thousands of unreadable matches that sort first do not hide a readable one', () =>
  withIndex(async (index) => {
    const at = { id: 'p1', time: '2026-01-01T00:00:00.000Z' };
    const entries: Entry[] = [dir('.'), dir('a-private', 0o700, 1001)];
    for (let i = 0; i < 4500; i++) entries.push(file(`a-private/report-${String(i).padStart(4, '0')}.txt`, D, 5, 0o600, 1001));
    entries.push(dir('b-mine', 0o755, 1000), file('b-mine/report-mine.txt', B, 7, 0o600, 1000));
    await index.indexPoint('s', at, entries);
    const fv = versionsOver(index, [at]);
    const mine = await fv.search(['s'], 'report', { uid: 1000, gids: [1000] });
    assert.deepEqual(mine.map((m) => m.path), ['b-mine/report-mine.txt']);
    assert.equal((await fv.search(['s'], 'report', undefined, 4600)).length, 4501, 'every page is read, none twice');
    assert.deepEqual(await fv.search(['s'], 'report', { uid: 1000, gids: [1000] }, 50, 0), [], 'a spent budget stops the search');
    await fv.close();
  }));

test('creating beside the original needs write and search on the directory, and search above it, at the newest point', () =>
  withIndex(async (index) => {
    const at = (n: number): { id: string; time: string } => ({ id: `p${n}`, time: `2026-01-0${n}T00:00:00.000Z` });
    const tree = (shared: number): Entry[] => [
      dir('.'),
      dir('home', 0o755),
      dir('home/alice', 0o700, 1000),
      dir('shared', shared),
      { ...dir('shared/team', 0o770), gid: 100 },
      dir('tmp', 0o1777),
    ];
    await index.indexPoint('s', at(1), tree(0o755));
    await index.indexPoint('s', at(2), tree(0o700));
    const fv = versionsOver(index, [at(1), at(2)]);
    const alice = { uid: 1000, gids: [1000, 100] };
    assert.equal(await fv.canCreateIn('s', 'home/alice', alice), true, 'her own home');
    assert.equal(await fv.canCreateIn('s', 'home', alice), false, "root's 0755 folder");
    assert.equal(await fv.canCreateIn('s', '.', alice), false, 'the source root, 0755 root');
    assert.equal(await fv.canCreateIn('s', 'tmp', alice), true, 'a 1777 folder');
    assert.equal(await fv.canCreateIn('s', 'home/alice', { uid: 1001, gids: [1001] }), false, "someone else's home");
    assert.equal(await fv.canCreateIn('s', 'shared/team', alice), false, 'group-writable, but shared/ was closed (0700) at the newest point');
    assert.equal(await fv.canCreateIn('s', 'nowhere', alice), false, 'a folder not in the point');
    const fv1 = versionsOver(index, [at(1)]);
    assert.equal(await fv1.canCreateIn('s', 'shared/team', alice), true, 'with only point 1 live, shared/ was open and team/ group-writable');
    await fv.close();
    await fv1.close();
  }));
