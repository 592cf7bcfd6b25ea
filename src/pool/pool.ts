/**
 * A storage pool in a directory: packs, index files, point files and the SQLite catalog.
 *
 * Write ordering (docs/design.md): packs are written and fsynced, then the session's index file,
 * then the point file, then the catalog row. Until the row exists nothing is visible; a crash at
 * any step leaves only unreferenced files that gc may remove.
 *
 * The in-memory index is a *view*: every index file's entries except the locations the catalog's
 * condemned set took out of service (by gc or verify), as of a catalog epoch. The commit check
 * (commitPoint) makes sure a point never depends on a view older than the condemned set.
 */
import { mkdir, readdir, stat, access, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { HoldfastError, errnoCode } from '../core/errors.js';
import { CodecPool } from '../workers/codec-pool.js';
import { Catalog, type PointRow, type SourceKind } from './catalog.js';
import { ChunkIndex, scanRecords, type ChunkLocation } from './chunk-index.js';
import { INDEX_ENTRY_BYTES, indexBody } from './index-file.js';
import { forEachIndexFile } from './index-files-read.js';
import { defaultPoolConfig, readPoolConfig, type PoolConfig } from './pool-config.js';
import { poolPaths, type PoolPaths } from './pool-layout.js';
import { writeFileDurable } from './durable.js';
import { WriteSession } from './write-session.js';
import { pointDigests } from './point-digests.js';
import { asPoolError } from './pool-full.js';
import { PackWriter } from './pack-writer.js';
import { PackReader } from './pack-reader.js';
import { commitLog, type CommittedLog, type NewLog } from './log-chain.js';

export interface PoolOpenOptions {
  codec?: CodecPool;
  /** start the codec workers now, to load beside the index (a command that will use them) */
  warm?: boolean;
  /**
   * Load the index view when something first needs it, not at open: for a command that may not
   * (a backup that finds nothing changed, a listing). Write sessions, the commit check and the
   * pack reader wait for it themselves; `index` is empty until then.
   */
  lazyIndex?: boolean;
}

/** At most this many chunks are looked up by scanning the index files instead of loading them. */
const SCAN_LIMIT = 8;
/** Listings of the index directory one load may take while gc deletes files under it. */
const MAX_LIST_ROUNDS = 20;

export class Pool {
  readonly index = new ChunkIndex();
  readonly reader: PackReader;
  /** the one pack writer every write session of this process shares */
  readonly packs: PackWriter;
  /** chunks claimed by a session and not yet indexed, with their claimant */
  private readonly pending = new Map<string, WriteSession>();
  /** index files that failed their checksum when the index was last loaded */
  readonly damagedIndexes: string[] = [];
  /** the catalog epoch the in-memory index reflects (see catalog.epoch()) */
  viewEpoch = -1;
  private refreshing: Promise<void> | undefined;
  /** entries indexed while a reload runs, added to the reloaded view */
  /** index records of packs written while the view reloads (added to the new view too) */
  private indexedDuringRefresh: Buffer[] | undefined;
  /** sessions that hold a lease: running, or finished and waiting for their point's commit */
  private readonly sessions = new Set<WriteSession>();
  private readonly awaitingCommit = new Set<WriteSession>();

  private constructor(
    readonly dir: string,
    readonly paths: PoolPaths,
    readonly config: PoolConfig,
    readonly catalog: Catalog,
    readonly codec: CodecPool,
    private readonly ownsCodec: boolean,
  ) {
    this.reader = new PackReader(
      paths,
      this.index,
      codec,
      () => this.refreshIndex(),
      (digest) => {
        const d = this.catalog.damagedLocations(digest)[0];
        return d ? `verify found it damaged in pack ${d.pack} on ${new Date(d.condemnedAt).toISOString()}; the next backup of a source that has it sends it again` : undefined;
      },
      { loaded: () => this.viewLoaded, few: (digests) => this.locateFew(digests), load: () => this.freshView() },
    );
    this.packs = new PackWriter(
      paths,
      config.packSize,
      (records, digests) => {
        this.index.addRecords(records);
        for (const d of digests) this.pending.delete(d);
        this.indexedDuringRefresh?.push(records);
      },
      (digests: string[]) => {
        for (const d of digests) this.pending.delete(d);
      },
    );
  }

  static async init(dir: string, overrides: Partial<PoolConfig> = {}): Promise<PoolConfig> {
    const paths = poolPaths(dir);
    try {
      await access(paths.config);
      throw new HoldfastError('POOL_EXISTS', `a storage pool already exists at ${dir}`, { pool: dir });
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    try {
      const entries = await readdir(dir);
      if (entries.length > 0) throw new HoldfastError('TARGET_NOT_EMPTY', `cannot create a storage pool in ${dir}: the directory is not empty`, { pool: dir });
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    const config = { ...defaultPoolConfig(randomBytes(16).toString('hex')), ...overrides };
    for (const d of [paths.packs, paths.index, paths.points]) await mkdir(d, { recursive: true });
    new Catalog(paths.catalog).close();
    // config.json last: a pool exists once it is there.
    await writeFileDurable(paths.config, `${JSON.stringify(config, null, 2)}\n`);
    return config;
  }

  static async open(dir: string, opts: PoolOpenOptions = {}): Promise<Pool> {
    const paths = poolPaths(dir);
    const config = await readPoolConfig(paths.config, dir);
    const catalog = new Catalog(paths.catalog);
    const codec = opts.codec ?? new CodecPool();
    const pool = new Pool(dir, paths, config, catalog, codec, !opts.codec);
    if (opts.warm) codec.warm();
    if (!opts.lazyIndex) await pool.refreshIndex();
    return pool;
  }

  async close(): Promise<void> {
    await this.packs.flush();
    for (const s of [...this.sessions]) s.close();
    await this.reader.close();
    this.catalog.close();
    if (this.ownsCodec) await this.codec.close();
  }

  /** A write session; `compressionLevel` overrides the pool's (0 stores chunks raw). */
  startSession(compressionLevel = this.config.compressionLevel): WriteSession {
    try {
      return new WriteSession(this, compressionLevel);
    } catch (err) {
      throw asPoolError(err, this.dir); // the lease row may not fit on a full pool
    }
  }

  /**
   * Dedup decision for one digest: 'stored' (indexed), 'borrowed' (another session is sending
   * it), 'mine' (this session already claimed it) or 'claimed' (the caller must send it).
   */
  claim(digest: string, session: WriteSession): 'stored' | 'borrowed' | 'mine' | 'claimed' {
    if (this.index.has(digest)) return 'stored';
    const owner = this.pending.get(digest);
    if (owner === session) return 'mine';
    if (owner) return 'borrowed';
    this.pending.set(digest, session);
    return 'claimed';
  }

  /** Gives back claims a session will not send. */
  release(digests: Iterable<string>, session: WriteSession): void {
    for (const d of digests) if (this.pending.get(d) === session) this.pending.delete(d);
  }

  /**
   * Writes the point file, then the catalog row: the recovery point is committed by the row.
   *
   * The row is inserted by the commit check, one IMMEDIATE catalog transaction that gc's
   * condemnation cannot interleave with. It refuses with RETRY (after reloading the view, so the
   * sync's next attempt sends the chunks again) when the point may depend on a chunk gc condemned
   * or verify found damaged. `session` is the write session that stored the point's chunks; when
   * omitted, the one session of this pool waiting for its commit is taken, if there is exactly one.
   */
  async commitPoint(p: PointRow, sourcePath: string, session: WriteSession | undefined = this.soleAwaitingSession()): Promise<void> {
    try {
      this.catalog.addSource({ name: p.source, kind: p.kind, path: sourcePath, created: new Date().toISOString() });
      await writeFileDurable(this.paths.pointFile(p.id), `${JSON.stringify(p)}\n`);
      await this.checkAndInsert(p, session);
    } catch (err) {
      throw asPoolError(err, this.dir);
    } finally {
      session?.close();
    }
  }

  /** Commits a shipped log record whose chunks `session` stored (pool/log-chain.ts). */
  commitLog(row: NewLog, session: WriteSession | undefined): Promise<CommittedLog> {
    return commitLog(this, row, session);
  }

  /** The commit check (docs/design.md, "Garbage collection and concurrent syncs"). */
  private async checkAndInsert(p: PointRow, session: WriteSession | undefined): Promise<void> {
    const sessions = session ? [session] : [...this.awaitingCommit];
    for (let attempt = 0; attempt < 5; attempt++) {
      const epoch = this.catalog.epoch();
      const parentSound = p.parent === null || this.catalog.pointSound(p.parent);
      // Fast path: nothing was condemned since the views that answered 'stored' were loaded,
      // the point's own and borrowed chunks are covered by the lease, and chunk lists reused
      // without asking come from a parent that is still committed (so still marked by any gc).
      const fast = session !== undefined && session.minViewEpoch >= epoch && parentSound;
      let check: Set<string> | undefined;
      if (!fast) {
        await this.freshView();
        check = session && parentSound ? session.reused : await pointDigests(this.reader, p.manifest);
      }
      type Outcome = { ok: true } | { again: true } | { lease: true } | { gone: string };
      const outcome = this.catalog.immediate((): Outcome => {
        if (this.catalog.epoch() !== epoch || (check && this.viewEpoch !== epoch)) return { again: true };
        if (sessions.some((s) => !s.lease.valid())) return { lease: true };
        if (p.parent !== null && this.catalog.pointSound(p.parent) !== parentSound) return { again: true };
        // The view at this epoch excludes every condemned location: a digest it lacks is gone.
        if (check) for (const d of check) if (!this.index.has(d)) return { gone: d };
        this.catalog.insertPoint(p);
        return { ok: true };
      });
      if ('ok' in outcome) return;
      if ('again' in outcome) continue;
      await unlink(this.paths.pointFile(p.id)).catch(() => undefined);
      if ('lease' in outcome) {
        throw new HoldfastError('RETRY', `the sync's lease on storage pool ${this.dir} expired before its recovery point was committed; run the sync again`, { pool: this.dir });
      }
      throw new HoldfastError('RETRY', `chunk ${outcome.gone} was removed by gc (or found damaged) while the sync ran; run the sync again to send it again`, { digest: outcome.gone, pool: this.dir });
    }
    await unlink(this.paths.pointFile(p.id)).catch(() => undefined);
    throw new HoldfastError('RETRY', `storage pool ${this.dir} kept changing under the commit of recovery point ${p.id}; run the sync again`, { pool: this.dir });
  }

  /** Makes the in-memory index current for the catalog's epoch (reloads it if gc or verify changed the pool). */
  async freshView(): Promise<void> {
    while (this.refreshing || this.catalog.epoch() !== this.viewEpoch) await this.refreshIndex();
  }

  /**
   * Reloads the view from the index files, leaving out condemned locations. Readers call it when
   * a pack vanished (gc repacked it), sessions when the epoch moved.
   */
  refreshIndex(): Promise<void> {
    this.refreshing ??= (async () => {
      this.indexedDuringRefresh = [];
      try {
        await this.loadIndex();
      } finally {
        this.indexedDuringRefresh = undefined;
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  sessionStarted(s: WriteSession): void {
    this.sessions.add(s);
  }

  awaitCommit(s: WriteSession): void {
    this.awaitingCommit.add(s);
  }

  sessionClosed(s: WriteSession): void {
    this.sessions.delete(s);
    this.awaitingCommit.delete(s);
  }

  private soleAwaitingSession(): WriteSession | undefined {
    return this.awaitingCommit.size === 1 ? [...this.awaitingCommit][0] : undefined;
  }

  requireSource(name: string, kind?: SourceKind): { name: string; kind: SourceKind } {
    const s = this.catalog.source(name);
    if (!s) throw new HoldfastError('SOURCE_NOT_FOUND', `no source named '${name}' in storage pool ${this.dir}`, { source: name, pool: this.dir });
    if (kind && s.kind !== kind) throw new HoldfastError('KIND_MISMATCH', `source '${name}' is of kind ${s.kind}, not ${kind}`, { source: name });
    return s;
  }

  /** Resolves --point (full id or unique prefix) or --at (latest at or before a time). */
  resolvePoint(source: string, opts: { point?: string; at?: string }): PointRow {
    this.requireSource(source);
    if (opts.point) {
      const matches = this.catalog.pointsByPrefix(opts.point).filter((p) => p.source === source);
      if (matches.length === 1) return matches[0] as PointRow;
      if (matches.length > 1) throw new HoldfastError('BAD_ARGUMENT', `recovery point id '${opts.point}' is ambiguous in source '${source}'`, { point: opts.point });
      throw new HoldfastError('POINT_NOT_FOUND', `no recovery point '${opts.point}' for source '${source}'`, { point: opts.point, source });
    }
    let at: string | undefined;
    if (opts.at) {
      const t = new Date(opts.at);
      if (Number.isNaN(t.getTime())) throw new HoldfastError('BAD_ARGUMENT', `not a time: '${opts.at}' (use ISO 8601, e.g. 2026-11-25T08:00:00Z)`);
      at = t.toISOString();
    }
    const p = this.catalog.latestPoint(source, at, { includeDamaged: true });
    if (!p) {
      throw new HoldfastError('POINT_NOT_FOUND', at ? `source '${source}' has no recovery point at or before ${at}` : `source '${source}' has no recovery points`, { source });
    }
    return p;
  }

  async storedBytes(): Promise<{ bytes: number; packs: number }> {
    let bytes = 0;
    let packs = 0;
    for (const sub of await readdir(this.paths.packs)) {
      for (const f of await readdir(`${this.paths.packs}/${sub}`)) {
        if (!f.endsWith('.pack')) continue;
        bytes += (await stat(`${this.paths.packs}/${sub}/${f}`)).size;
        packs++;
      }
    }
    return { bytes, packs };
  }

  /**
   * Locations of a few chunks read before the view is loaded (a backup that finds nothing
   * changed reads one manifest chunk): the index files are scanned for them, checked as a load
   * checks them, without building the table. Undefined when the view is loaded or the scan could
   * not answer (a damaged or vanished index file): then the view answers.
   */
  async locateFew(digests: string[]): Promise<Array<ChunkLocation | undefined> | undefined> {
    if (this.viewEpoch >= 0 || this.refreshing || digests.length > SCAN_LIMIT) return undefined;
    const { skip } = this.condemnedFilter();
    const keys = digests.map((d) => Buffer.from(d, 'hex'));
    const found = new Array<ChunkLocation | undefined>(digests.length);
    let sound = true;
    const names = await this.indexFileNames();
    await forEachIndexFile(this.paths.index, names, await this.indexFileSizes(names), (_name, buf) => {
      const body = buf && indexBody(buf);
      if (!body || typeof body === 'string') sound = false;
      else if (sound) scanRecords(body, keys, found, skip);
    });
    return sound ? found : undefined;
  }

  /** A view was loaded (a lazy pool's `index` is empty until then). */
  get viewLoaded(): boolean {
    return this.viewEpoch >= 0;
  }

  private condemnedFilter(): { epoch: number; skip?: (d: Buffer, p: Buffer) => boolean } {
    const { epoch, condemned } = this.catalog.snapshot(() => ({ epoch: this.catalog.epoch(), condemned: this.catalog.condemned() }));
    const skipSet = new Set(condemned.map((c) => c.digest + c.pack));
    const skip = skipSet.size > 0 ? (d: Buffer, p: Buffer): boolean => skipSet.has(d.toString('hex') + p.toString('hex')) : undefined;
    return { epoch, skip };
  }

  private async indexFileNames(): Promise<string[]> {
    return (await readdir(this.paths.index)).filter((f) => f.endsWith('.idx')).sort();
  }

  /** Each file's length, 0 for one gone since it was listed (forEachIndexFile sizes its buffers by them). */
  private indexFileSizes(names: string[]): Promise<number[]> {
    return Promise.all(names.map((n) => stat(`${this.paths.index}/${n}`).then((st) => st.size, () => 0)));
  }

  private async loadIndex(): Promise<void> {
    // The epoch and condemned set are read before the files: if gc moves on meanwhile, this view
    // is older than the catalog's epoch, and the commit check notices.
    const { epoch, skip } = this.condemnedFilter();
    const fresh = new ChunkIndex();
    const damaged: string[] = [];
    const seen = new Set<string>();
    // A file gone since it was listed was deleted by gc after it wrote its replacement: the
    // directory is listed again and only files not read yet are read, their locations preferred.
    // Stopping short would leave a view without live chunks (a reader's false "missing").
    for (let round = 0; ; round++) {
      const names = (await this.indexFileNames()).filter((n) => !seen.has(n));
      let vanished = false;
      // Sized from the files' lengths (a little over: their magic and checksums count too).
      const lengths = await this.indexFileSizes(names);
      fresh.expect(Math.ceil(lengths.reduce((a, b) => a + b, 0) / INDEX_ENTRY_BYTES));
      await forEachIndexFile(this.paths.index, names, lengths, (name, buf) => {
        if (!buf) {
          vanished = true;
          return;
        }
        seen.add(name);
        const body = indexBody(buf);
        if (typeof body === 'string') damaged.push(`${name}: ${body}`);
        else fresh.addRecords(body, skip, round > 0);
      });
      if (!vanished) break;
      if (round >= MAX_LIST_ROUNDS) {
        throw new HoldfastError('RETRY', `the index files of storage pool ${this.dir} kept vanishing while they were read (${round + 1} listings; gc deleting them?); try again`, { pool: this.dir });
      }
    }
    for (const records of this.indexedDuringRefresh ?? []) fresh.addRecords(records, skip);
    this.index.replaceWith(fresh);
    this.damagedIndexes.splice(0, this.damagedIndexes.length, ...damaged);
    this.viewEpoch = epoch;
  }
}
