/**
 * A storage pool in a directory: packs, index files, point files and the SQLite catalog.
 *
 * Write ordering (docs/design.md): packs are written and fsynced, then the session's index file,
 * then the point file, then the catalog row. Until the row exists nothing is visible; a crash at
 * any step leaves only unreferenced files that gc may remove.
 */
import { mkdir, readdir, readFile, stat, access } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { HoldfastError, errnoCode } from '../core/errors.js';
import { CodecPool } from '../workers/codec-pool.js';
import { Catalog, type PointRow, type SourceKind } from './catalog.js';
import { ChunkIndex } from './chunk-index.js';
import { indexBody, type IndexEntry } from './index-file.js';
import { defaultPoolConfig, readPoolConfig, type PoolConfig } from './pool-config.js';
import { poolPaths, type PoolPaths } from './pool-layout.js';
import { writeFileDurable } from './durable.js';
import { WriteSession } from './write-session.js';
import { PackWriter } from './pack-writer.js';
import { PackReader } from './pack-reader.js';

export interface PoolOpenOptions {
  codec?: CodecPool;
}

export class Pool {
  readonly index = new ChunkIndex();
  readonly reader: PackReader;
  /** the one pack writer every write session of this process shares */
  readonly packs: PackWriter;
  /** chunks claimed by a session and not yet indexed, with their claimant */
  private readonly pending = new Map<string, WriteSession>();
  /** index files that failed their checksum when the pool was opened */
  readonly damagedIndexes: string[] = [];

  private constructor(
    readonly dir: string,
    readonly paths: PoolPaths,
    readonly config: PoolConfig,
    readonly catalog: Catalog,
    readonly codec: CodecPool,
    private readonly ownsCodec: boolean,
  ) {
    this.reader = new PackReader(paths, this.index, codec);
    this.packs = new PackWriter(
      paths,
      config.packSize,
      (entries: IndexEntry[]) => {
        for (const e of entries) {
          this.index.add(e);
          this.pending.delete(e.digest);
        }
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
    await pool.loadIndex();
    return pool;
  }

  async close(): Promise<void> {
    await this.packs.flush();
    await this.reader.close();
    this.catalog.close();
    if (this.ownsCodec) await this.codec.close();
  }

  /** A write session; `compressionLevel` overrides the pool's (0 stores chunks raw). */
  startSession(compressionLevel = this.config.compressionLevel): WriteSession {
    return new WriteSession(this, compressionLevel);
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

  /** Writes the point file, then the catalog row: the recovery point is committed by the row. */
  async commitPoint(p: PointRow, sourcePath: string): Promise<void> {
    this.catalog.addSource({ name: p.source, kind: p.kind, path: sourcePath, created: new Date().toISOString() });
    await writeFileDurable(this.paths.pointFile(p.id), `${JSON.stringify(p)}\n`);
    this.catalog.insertPoint(p);
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
    const p = this.catalog.latestPoint(source, at);
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

  private async loadIndex(): Promise<void> {
    const names = (await readdir(this.paths.index)).filter((f) => f.endsWith('.idx')).sort();
    for (const name of names) {
      const body = indexBody(await readFile(`${this.paths.index}/${name}`));
      if (typeof body === 'string') {
        this.damagedIndexes.push(`${name}: ${body}`);
        continue;
      }
      this.index.addRecords(body);
    }
  }
}
