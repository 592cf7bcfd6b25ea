/**
 * The agent ⇄ server contract: the jobs the server hands out and what agents report back,
 * as JSON schemas (TypeBox) that the server validates with and both sides type-check against.
 */
import { Type, type Static } from '@sinclair/typebox';

export const Digest = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const ChunkRefSchema = Type.Tuple([Digest, Type.Integer({ minimum: 0, maximum: 64 * 1024 * 1024 })]);
export const ManifestRefs = Type.Array(ChunkRefSchema, { maxItems: 1_000_000 });
export const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });

/** How an agent reads a source: tracker choice, a running QEMU, btrfs snapshots, quiescing. */
export const SourceOptions = Type.Object(
  {
    tracker: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('full'), Type.Literal('qcow2-bitmap'), Type.Literal('btrfs')])),
    qemu: Type.Optional(Type.Object({ qmpSocket: Type.String({ maxLength: 4096 }), node: Type.String({ maxLength: 256 }), nbdSocket: Type.Optional(Type.String({ maxLength: 4096 })) })),
    snapshotDir: Type.Optional(Type.String({ maxLength: 4096 })),
    preSnapshot: Type.Optional(Type.String({ maxLength: 4096 })),
    postSnapshot: Type.Optional(Type.String({ maxLength: 4096 })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 3_600_000 })),
    fsfreeze: Type.Optional(Type.Boolean()),
    /** kind 'postgres': how the agent connects (libpq URL or conninfo) and where pg_ctl lives */
    postgres: Type.Optional(Type.Object({ connect: Type.String({ maxLength: 4096 }), bin: Type.Optional(Type.String({ maxLength: 4096 })) }, { additionalProperties: false })),
    /** kind 'sqlite': ship WAL frames as they are committed, or at the group's frequency */
    sqlite: Type.Optional(Type.Object({ ship: Type.Optional(Type.Union([Type.Literal('continuous'), Type.Literal('frequency')])) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type SourceOptions = Static<typeof SourceOptions>;

export const SourceKindSchema = Type.Union([Type.Literal('dir'), Type.Literal('image'), Type.Literal('btrfs'), Type.Literal('postgres'), Type.Literal('sqlite')]);
export const LogKindSchema = Type.Union([Type.Literal('pg-wal'), Type.Literal('sqlite-wal')]);
/** Kind-specific facts (a point's backup label, a log record's segment number): small JSON. */
export const MetaSchema = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown());
export type SourceKindWire = Static<typeof SourceKindSchema>;

export const SyncJobSpec = Type.Object({
  id: Type.String(),
  /** which run of the job this is: requests of an older attempt are refused */
  attempt: Type.Integer({ minimum: 1 }),
  type: Type.Literal('sync'),
  source: Type.Object({ name: Type.String(), kind: SourceKindSchema, path: Type.String(), options: Type.Optional(SourceOptions) }),
  parent: Type.Optional(Type.Object({ id: Type.String(), manifest: ManifestRefs })),
  /** compare with the parent instead of trusting the change map ('heavy': re-read every file) */
  consistencyCheck: Type.Optional(Type.Union([Type.Literal('light'), Type.Literal('heavy')])),
  compressionLevel: Type.Integer({ minimum: 0, maximum: 22 }),
  throttleBps: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  cdc: Type.Object({ min: Type.Integer(), avg: Type.Integer(), max: Type.Integer() }),
  imageChunk: Type.Integer(),
  /** the group's sync frequency (database sources ship logs at least this often; null: points only) */
  syncEveryMs: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
});
export type SyncJobSpec = Static<typeof SyncJobSpec>;

export const RestoreJobSpec = Type.Object({
  id: Type.String(),
  attempt: Type.Integer({ minimum: 1 }),
  type: Type.Literal('restore'),
  source: Type.Object({ name: Type.String(), kind: Type.Union([Type.Literal('dir'), Type.Literal('image')]) }),
  point: Type.Object({ id: Type.String(), manifest: ManifestRefs, logicalBytes: Type.Integer() }),
  target: Type.String(),
  subPath: Type.Optional(Type.String()),
  /** several entries, each restored into the target under its own name (instead of subPath) */
  subPaths: Type.Optional(Type.Array(Type.String(), { maxItems: 1000 })),
  overwrite: Type.Boolean(),
  /** a new name for the one restored entry (the portal's "restore beside the original") */
  rename: Type.Optional(Type.String()),
  /**
   * whose the restored entries become (the portal user restoring a file they do not own): as `cp`
   * makes a copy, with set-user-ID and set-group-ID bits dropped
   */
  owner: Type.Optional(Type.Object({ uid: Type.Integer({ minimum: 0 }), gid: Type.Integer({ minimum: 0 }) })),
  /** a database source: what to do after the files are in place */
  database: Type.Optional(
    Type.Object({
      kind: Type.Union([Type.Literal('postgres'), Type.Literal('sqlite')]),
      /** recover up to this time (absent: as far as the logs go) */
      targetTime: Type.Optional(Type.String({ maxLength: 64 })),
      /** stop as soon as the copy is consistent (a restore of the point itself) */
      immediate: Type.Optional(Type.Boolean()),
      /** start the database and wait for recovery (postgres); false: only prepare the directory */
      start: Type.Boolean(),
      /** the point's kind-specific facts (postgres: backupLabel, tablespaceMap) */
      pointMeta: Type.Optional(MetaSchema),
      /** postgres: the port to start on (absent: a free one) and pg_ctl's directory */
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
      bin: Type.Optional(Type.String({ maxLength: 4096 })),
    }),
  ),
  /** the log records the restore needs after the point, in chain order */
  logs: Type.Optional(Type.Array(Type.Object({ name: Type.String({ maxLength: 255 }), seq: Type.Integer(), kind: LogKindSchema, time: Type.String(), meta: MetaSchema, manifest: ManifestRefs }), { maxItems: 1_000_000 })),
});
export type RestoreJobSpec = Static<typeof RestoreJobSpec>;

/**
 * A recoverability drill: restore the point (and, for a database, its logs up to `at`) into a
 * scratch place on the agent, start the database, check it, stop it, remove the copy, report.
 */
export const DrillJobSpec = Type.Object({
  id: Type.String(),
  attempt: Type.Integer({ minimum: 1 }),
  type: Type.Literal('drill'),
  /** the source as the server knows it: its kind picks the check */
  source: Type.Object({ name: Type.String(), kind: SourceKindSchema, path: Type.String() }),
  point: Type.Object({
    id: Type.String(), kind: Type.Union([Type.Literal('dir'), Type.Literal('image')]), time: Type.String(), manifest: ManifestRefs, logicalBytes: Type.Integer(), files: Type.Integer(),
    /** the point's kind-specific facts (postgres: backupLabel, tablespaceMap) */
    meta: Type.Optional(MetaSchema),
  }),
  /** the time the drill recovers to (a database replays its logs up to it); absent: as far as the logs go */
  at: Type.Optional(Type.String({ maxLength: 64 })),
  /** a database source: the log records after the point the recovery replays, in chain order */
  logs: RestoreJobSpec.properties.logs,
  /** a database source drilled at a point (--point): recover only until the copy is consistent */
  immediate: Type.Optional(Type.Boolean()),
  check: Type.Object({
    /** the check, when not the source kind's own: a directory or btrfs source holding a cluster or SQLite files */
    kind: Type.Optional(Type.Union([Type.Literal('postgres'), Type.Literal('sqlite'), Type.Literal('bytes')])),
    /** a query that must succeed (PostgreSQL: where amcheck is missing, or as well; SQLite: as well) */
    query: Type.Optional(Type.String({ maxLength: 8192 })),
    /** PostgreSQL: directory of pg_ctl and psql; the source's libpq URL or conninfo (its role and database) */
    bin: Type.Optional(Type.String({ maxLength: 4096 })),
    connect: Type.Optional(Type.String({ maxLength: 4096 })),
  }),
});
export type DrillJobSpec = Static<typeof DrillJobSpec>;

export const DrillReport = Type.Object({
  ok: Type.Boolean(),
  detail: Type.String({ maxLength: 16384 }),
  /** 'postgres' (amcheck and/or the query), 'sqlite-integrity', 'bytes' (a source that is not a database), 'restore' (it failed) */
  check: Type.String({ maxLength: 64 }),
  restoreMs: Type.Number({ minimum: 0 }),
  checkMs: Type.Number({ minimum: 0 }),
  entries: Type.Integer({ minimum: 0 }),
  bytes: Type.Number({ minimum: 0 }),
  counts: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Number())),
});
export type DrillReport = Static<typeof DrillReport>;

export const JobSpec = Type.Union([SyncJobSpec, RestoreJobSpec, DrillJobSpec]);
export type JobSpec = Static<typeof JobSpec>;

export const JobProgress = Type.Object(
  {
    phase: Type.Optional(Type.String({ maxLength: 64 })),
    entries: Type.Optional(Type.Integer({ minimum: 0 })),
    bytesDone: Type.Optional(Type.Number({ minimum: 0 })),
    totalBytes: Type.Optional(Type.Number({ minimum: 0 })),
    readBytes: Type.Optional(Type.Number({ minimum: 0 })),
    sentBytes: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type JobProgress = Static<typeof JobProgress>;

export const SyncReport = Type.Object({
  manifest: ManifestRefs,
  entries: Type.Integer({ minimum: 0 }),
  logicalBytes: Type.Number({ minimum: 0 }),
  readBytes: Type.Number({ minimum: 0 }),
  sentBytes: Type.Number({ minimum: 0 }),
  torn: Type.Array(Type.String(), { maxItems: 100_000 }),
  warnings: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 1000 }),
  tracker: Type.String({ maxLength: 64 }),
  sourcePath: Type.String({ maxLength: 4096 }),
  /** files compared with the parent: what a consistency check found */
  check: Type.Optional(
    Type.Object({ added: Type.Integer({ minimum: 0 }), changed: Type.Integer({ minimum: 0 }), removed: Type.Integer({ minimum: 0 }), mismatched: Type.Integer({ minimum: 0 }) }),
  ),
  /** a database source: facts stored with the point (postgres: backupLabel, tablespaceMap, startWal, stopLsn...) */
  meta: Type.Optional(MetaSchema),
  /** a database source: when the copy became consistent (the point's time; default the job's start) */
  pointTime: Type.Optional(Type.String({ maxLength: 64 })),
});
export type SyncReport = Static<typeof SyncReport>;

export const RestoreReport = Type.Object({
  entries: Type.Integer({ minimum: 0 }),
  bytes: Type.Number({ minimum: 0 }),
  target: Type.String(),
  warnings: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 1000 }),
  /** a database restore: logs applied, where recovery stopped, the port it runs on */
  database: Type.Optional(MetaSchema),
});
export type RestoreReport = Static<typeof RestoreReport>;

export const JobFailure = Type.Object({ code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 8192 }) });
export type JobFailure = Static<typeof JobFailure>;

export const Hello = Type.Object({
  version: Type.String({ maxLength: 64 }),
  hostname: Type.String({ maxLength: 255 }),
  /** this agent process's id: jobs handed to an earlier process are requeued */
  run: Type.String({ pattern: '^[0-9a-f]{16}$' }),
  /** jobs this process gave up (the server was unreachable): requeued */
  abandoned: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 }),
});
export type Hello = Static<typeof Hello>;

export const HelloReply = Type.Object({ agentId: Type.String(), name: Type.String(), heartbeatMs: Type.Integer() });
export type HelloReply = Static<typeof HelloReply>;

export const JoinRequest = Type.Object({
  token: Type.String({ maxLength: 512 }),
  publicKey: Type.String({ maxLength: 4096 }),
  name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' })),
  hostname: Type.String({ maxLength: 255 }),
});
export type JoinRequest = Static<typeof JoinRequest>;

export const JoinReply = Type.Object({ agentId: Type.String(), name: Type.String(), cert: Type.String() });
export type JoinReply = Static<typeof JoinReply>;

export const WantRequest = Type.Object({ digests: Type.Array(Digest, { maxItems: 8192 }) });
export const WantReply = Type.Object({ want: Type.Array(Type.Boolean()) });
export const ReadRequest = Type.Object({ refs: Type.Array(ChunkRefSchema, { maxItems: 8192 }) });

/** Header naming the attempt a job request belongs to. */
export const ATTEMPT_HEADER = 'x-holdfast-attempt';

/** Chunk upload and read bodies stay below this (frames of chunks up to 1 MiB each). */
export const MAX_FRAMES_BODY = 32 * 1024 * 1024;
