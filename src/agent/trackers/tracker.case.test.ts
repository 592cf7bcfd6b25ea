/**
 * The contract every tracker runs (through `syncSource`, the seam callers use), each with a
 * fixture that makes its kind of source and changes it. A tracker must: produce a manifest that
 * is the source's content; after a committed sync, read only what changed (within the fixture's
 * bound) and report its name; read nothing when nothing changed; after abandon(), still see those
 * changes in the next sync; and when its state does not lead to the caller's parent point, read
 * everything, report 'full' and warn.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ChunkSink, ChunkSource, NewChunk } from '../../core/chunk-io.js';
import { DEFAULT_CDC, DEFAULT_IMAGE_CHUNK } from '../../core/chunker.js';
import { decodeChunk, type StoredChunk } from '../../core/codec.js';
import { readManifest } from '../../core/manifest-io.js';
import { chunkOffsets, hasContent, type ChunkRef } from '../../core/manifest.js';
import { CodecBatcher } from '../../workers/codec-batcher.js';
import { CodecPool } from '../../workers/codec-pool.js';
import { syncSource, type PendingSync, type SyncKind, type SyncRequest } from '../sync-source.js';

export interface TrackerFixture {
  /** the tracker's name in an outcome when it tracked the change */
  tracker: string;
  kind: SyncKind;
  /** false for 'full', which has no state to lose */
  tracks: boolean;
  /** makes the source; returns its path and any request fields it needs */
  setup(): Promise<{ path: string; stateDir: string; extra?: Partial<SyncRequest> }>;
  /** changes the source a little; returns the most bytes a tracker may read for it */
  change(): Promise<number>;
  /** the source's content now, as `fingerprintOf` renders a manifest */
  fingerprint(): Promise<string>;
  teardown(): Promise<void>;
}

/** Chunks in memory: a sink and a source for one test run. */
export class MemoryStore implements ChunkSink, ChunkSource {
  readonly compressionLevel = 0;
  private readonly chunks = new Map<string, NewChunk>();
  /** digests read through read(), for tests of what a sync reads back */
  readonly readDigests = new Set<string>();

  want(digests: string[]): Promise<boolean[]> {
    return Promise.resolve(digests.map((d) => !this.chunks.has(d)));
  }
  put(chunks: NewChunk[]): Promise<void> {
    // A sink copies what it keeps: the caller reuses the bytes once put() settles.
    for (const c of chunks) this.chunks.set(c.digest, { ...c, encoded: { flags: c.encoded.flags, data: Buffer.from(c.encoded.data) } });
    return Promise.resolve();
  }
  read(refs: ChunkRef[]): Promise<Uint8Array[]> {
    return Promise.resolve(
      refs.map(([digest, length]) => {
        this.readDigests.add(digest);
        const c = this.chunks.get(digest);
        if (!c) throw new Error(`chunk ${digest} is missing`);
        const r = decodeChunk(c.encoded.data, c.encoded.flags, length, digest);
        if (!r.ok) throw new Error(r.reason);
        return r.data;
      }),
    );
  }
  readEncoded(refs: ChunkRef[]): Promise<StoredChunk[]> {
    return Promise.resolve(refs.map(([digest, length]) => ({ digest, length, ...(this.chunks.get(digest) as NewChunk).encoded })));
  }
}

/** One line per object, `path type size sha256` (content of files rebuilt from chunks and holes), sorted. */
export async function fingerprintOf(store: ChunkSource, manifest: ChunkRef[]): Promise<string> {
  const lines: string[] = [];
  for await (const e of readManifest(store, manifest)) {
    if (!hasContent(e)) {
      lines.push(`${e.path} ${e.type}`);
      continue;
    }
    const data = Buffer.alloc(e.size);
    for (const { ref, offset } of chunkOffsets(e)) Buffer.from((await store.read([ref]))[0] as Uint8Array).copy(data, offset);
    lines.push(`${e.path} file ${e.size} ${createHash('sha256').update(data).digest('hex')}`);
  }
  return lines.sort().join('\n');
}

export function trackerContract(name: string, fixture: TrackerFixture): void {
  describe(`tracker contract: ${name}`, () => {
    const store = new MemoryStore();
    const codec = new CodecPool(2);
    let base: Omit<SyncRequest, 'parent'>;
    let parent: { id: string; manifest: ChunkRef[] } | undefined;
    let n = 0;
    const sync = async (p = parent): Promise<PendingSync> => syncSource({ ...base, parent: p });
    const commit = async (s: PendingSync): Promise<void> => {
      const id = `point-${n++}`;
      await s.committed(id);
      parent = { id, manifest: s.outcome.manifest };
    };
    const matches = async (s: PendingSync, what: string): Promise<void> => {
      assert.equal(await fingerprintOf(store, s.outcome.manifest), await fixture.fingerprint(), `${what}: the manifest is not the source`);
    };

    before(async () => {
      const { path, stateDir, extra } = await fixture.setup();
      base = {
        source: { name: 'contract', kind: fixture.kind, path },
        sink: store,
        chunks: store,
        batcher: new CodecBatcher(codec, 0),
        cdc: DEFAULT_CDC,
        imageChunk: DEFAULT_IMAGE_CHUNK,
        stateDir,
        ...extra,
      };
    });
    after(async () => {
      await codec.close();
      await fixture.teardown();
    });

    test('the first sync gives the whole source', async () => {
      const s = await sync();
      assert.equal(s.outcome.tracker, 'full');
      await matches(s, 'first sync');
      await commit(s);
    });

    test('a committed sync, then a change: read through the tracker, within the bound', async () => {
      const bound = await fixture.change();
      store.readDigests.clear();
      const s = await sync();
      assert.equal(s.outcome.tracker, fixture.tracker, s.outcome.warnings.join('; '));
      assert.ok(s.outcome.readBytes <= bound, `read ${s.outcome.readBytes} bytes for a change that allows ${bound}`);
      // btrfs and the journal keep what even the first (full) sync committed in this process.
      if (fixture.tracker === 'btrfs' || fixture.tracker === 'inotify') {
        assert.deepEqual((parent as { manifest: ChunkRef[] }).manifest.filter(([d]) => store.readDigests.has(d)), [], 'the parent manifest was read back');
      }
      await matches(s, 'after a change');
      await commit(s);
    });

    // An agent daemon's btrfs and journal syncs keep the committed point's files (sync-source.ts)
    // or entries (inotify.ts) for the next sync.
    test('btrfs and inotify, one process: the next sync takes its parent from the last commit, not from its manifest', { skip: fixture.tracker !== 'btrfs' && fixture.tracker !== 'inotify' }, async () => {
      const bound = await fixture.change();
      const parentManifest = (parent as { manifest: ChunkRef[] }).manifest;
      store.readDigests.clear();
      const s = await sync();
      assert.equal(s.outcome.tracker, fixture.tracker, s.outcome.warnings.join('; '));
      assert.ok(s.outcome.readBytes <= bound, `read ${s.outcome.readBytes} bytes for a change that allows ${bound}`);
      assert.deepEqual(parentManifest.filter(([d]) => store.readDigests.has(d)), [], 'the parent manifest was read back');
      await matches(s, 'after a change, parent from the last commit');
      await commit(s);
    });

    test('nothing changed: nothing is read', async () => {
      const s = await sync();
      assert.equal(s.outcome.readBytes, 0);
      await matches(s, 'unchanged');
      await commit(s);
    });

    test('abandon(): the next sync still sees the changes of the abandoned one', async () => {
      const b1 = await fixture.change();
      const dropped = await sync();
      await dropped.abandon();
      const b2 = await fixture.change();
      const s = await sync();
      assert.equal(s.outcome.tracker, fixture.tracker, s.outcome.warnings.join('; '));
      assert.ok(s.outcome.readBytes <= b1 + b2, `read ${s.outcome.readBytes} bytes; the changes allow ${b1 + b2}`);
      await matches(s, 'after an abandoned sync');
      await commit(s);
    });

    test('a parent the tracker state does not lead to: read everything, say so', { skip: !fixture.tracks }, async () => {
      await fixture.change();
      const other = { id: 'point-from-elsewhere', manifest: (parent as { manifest: ChunkRef[] }).manifest };
      const s = await sync(other);
      assert.equal(s.outcome.tracker, 'full');
      assert.match(s.outcome.warnings.join('\n'), /point-from-elsewhere.*reading everything|reading everything/);
      await matches(s, 'full fallback');
      await commit(s);
      // The full sync set tracking up again.
      const bound = await fixture.change();
      const next = await sync();
      assert.equal(next.outcome.tracker, fixture.tracker);
      assert.ok(next.outcome.readBytes <= bound);
      await matches(next, 'after the fallback');
      await commit(next);
    });
  });
}
