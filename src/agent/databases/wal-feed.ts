/**
 * Shipped WAL fed to a restored PostgreSQL while it replays. The copy is started as soon as its
 * data directory is in place; a fetcher writes the job's segments into the WAL directory in chain
 * order (each under a temporary name, renamed once whole and verified), a few at a time, and
 * restore_command is a small script that
 *  - answers "no such file" (exit 1) at once for a name not in the job's list: past the end of the
 *    chain (the end of recovery for --latest), or a timeline history PostgreSQL probes for;
 *  - waits for a listed name until the fetcher has put it in place, then hard-links it to %p when
 *    the file is already the cluster owner's (a link costs nothing; PostgreSQL's startup process
 *    waits for restore_command, so a 16 MiB copy per segment slows replay), else copies it;
 *  - aborts recovery (exit 127: PostgreSQL treats it as fatal, not as the end of the archive) when
 *    the fetcher failed, the agent running it is gone or the copy fails, so a restore never stops
 *    short silently.
 * History files are fetched first: PostgreSQL reads them at start to pick its timeline. The restore
 * stops the fetcher once recovery is over, so segments past the target are not all fetched.
 */
import { chmod, chown, open, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkSource } from '../../core/chunk-io.js';
import { HoldfastError, isHoldfastError } from '../../core/errors.js';
import type { ChunkRef } from '../../core/manifest.js';
import type { CodecPool } from '../../workers/codec-pool.js';
import { fetchLog } from '../remote/log-shipper.js';

/** Segments fetched at once: one verifies and writes while the next ones are on the wire. */
const IN_FLIGHT = 3;
export const NAMES_FILE = '.holdfast-names';
export const FAILED_FILE = '.holdfast-failed';
export const SCRIPT_FILE = '.holdfast-restore-wal';

export interface WalFeed {
  /** resolves with the bytes written once every listed log is in place; rejects when fetching fails */
  readonly done: Promise<number>;
  /** logs in place so far */
  fetched(): number;
  bytes(): number;
  /** ms from the start to the end of fetching (or to now) */
  elapsedMs(): number;
  /** lifts `holdAfter`: fetch the rest (PostgreSQL has started) */
  release(): void;
  /**
   * The cluster owner, once the data directory says who it is: the logs fetched so far and from
   * now on are chowned to it, so restore_command can link rather than copy them.
   */
  setOwner(owner: { uid: number; gid: number }): Promise<void>;
  /** removes the fetched logs (recovery is over: PostgreSQL has its own links or copies) */
  removeLogs(): Promise<void>;
  /** stops fetching (recovery is over) and removes unfinished files; never throws */
  stop(): Promise<void>;
}

/**
 * Writes the restore_command script and the list of names it may wait for; returns the
 * restore_command setting. `walDir` must hold no quote, backslash or newline (checked by the caller).
 */
export async function writeRestoreCommand(walDir: string, names: string[], owner: { uid: number; gid: number }): Promise<string> {
  const script = join(walDir, SCRIPT_FILE);
  const text = [
    '#!/bin/sh',
    '# holdfast restore_command: $1 = %f, $2 = %p. Written by the restore; see wal-feed.ts.',
    `d='${walDir}'`,
    `grep -qxF -- "$1" "$d/${NAMES_FILE}" || exit 1`,
    'while [ ! -f "$d/$1" ]; do',
    `  if [ -f "$d/${FAILED_FILE}" ]; then echo "holdfast: fetching $1 failed: $(cat "$d/${FAILED_FILE}")" >&2; exit 127; fi`,
    `  if [ ! -d /proc/${process.pid} ]; then echo "holdfast: the agent fetching $1 is gone" >&2; exit 127; fi`,
    '  sleep 0.05',
    'done',
    // Owned by PostgreSQL's user: it renames the restored file into pg_wal and may later recycle
    // (rewrite) it, which a root-owned file would refuse.
    '{ [ -O "$d/$1" ] && ln -f "$d/$1" "$2" 2>/dev/null; } || cp "$d/$1" "$2" || { echo "holdfast: cannot copy $1 to $2" >&2; exit 127; }',
    '',
  ].join('\n');
  await writeFile(script, text, { mode: 0o755 });
  await chmod(script, 0o755);
  await chown(script, owner.uid, owner.gid);
  const list = join(walDir, NAMES_FILE);
  await writeFile(list, names.map((n) => `${n}\n`).join(''), { mode: 0o644 });
  await chown(list, owner.uid, owner.gid);
  return `"${script}" "%f" "%p"`;
}

/** History files first, then the chain's order. */
export function feedOrder<T extends { name: string }>(logs: T[]): T[] {
  return [...logs.filter((l) => l.name.endsWith('.history')), ...logs.filter((l) => !l.name.endsWith('.history'))];
}

export function feedWal(o: {
  source: ChunkSource;
  codec: CodecPool;
  logs: Array<{ name: string; manifest: ChunkRef[] }>;
  dir: string;
  /** fsync each file (a prepared directory started later); not needed while the copy replays */
  durable: boolean;
  /** fetch only this many logs until release(): the data directory goes first, the rest overlaps replay */
  holdAfter?: number;
  signal?: AbortSignal;
}): WalFeed {
  const stopper = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stopper.signal]) : stopper.signal;
  const order = feedOrder(o.logs);
  const started = Date.now();
  let ended: number | undefined;
  let fetched = 0;
  let bytes = 0;
  const names: string[] = [];
  let owner: { uid: number; gid: number } | undefined;
  const own = (name: string): Promise<void> => (owner ? chown(join(o.dir, name), owner.uid, owner.gid).catch(() => undefined) : Promise.resolve());
  let limit = o.holdAfter ?? Infinity;
  let openGate!: () => void;
  const opened = new Promise<void>((r) => (openGate = r));
  const release = (): void => {
    limit = Infinity;
    openGate();
  };
  signal.addEventListener('abort', release, { once: true });
  const run = async (): Promise<number> => {
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < order.length && !signal.aborted && !failed) {
        if (next >= limit) {
          await opened;
          continue;
        }
        const l = order[next++] as { name: string; manifest: ChunkRef[] };
        try {
          const n = await fetchLog(o.source, o.codec, l, o.dir, { mode: 0o644, durable: o.durable, signal });
          bytes += n;
          fetched++;
          names.push(l.name); // no await between this and own(): setOwner sees the name or own() sees the owner
          await own(l.name);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    // Every fetch settles before the feed does: nothing is written after it has ended.
    const settled = await Promise.allSettled(Array.from({ length: Math.min(IN_FLIGHT, order.length) }, worker));
    const bad = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
    if (signal.aborted && fetched < order.length) throw new HoldfastError('ABORTED', 'fetching the WAL was stopped');
    if (o.durable) {
      const d = await open(o.dir, 'r');
      await d.sync().finally(() => d.close());
    }
    return bytes;
  };
  const done = run().then(
    (n) => {
      ended = Date.now();
      return n;
    },
    async (err: unknown) => {
      ended = Date.now();
      if (!stopper.signal.aborted) {
        // restore_command aborts recovery rather than report the end of the archive
        const why = isHoldfastError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
        await writeFile(join(o.dir, FAILED_FILE), `${why}\n`, { mode: 0o644 }).catch(() => undefined);
      }
      throw err;
    },
  );
  done.catch(() => undefined); // the caller observes it through done or stop
  return {
    done,
    fetched: () => fetched,
    bytes: () => bytes,
    elapsedMs: () => (ended ?? Date.now()) - started,
    release,
    setOwner: async (who) => {
      owner = who;
      for (const n of [...names]) await own(n);
    },
    removeLogs: async () => {
      for (const n of names) await unlink(join(o.dir, n)).catch(() => undefined);
    },
    stop: async () => {
      stopper.abort();
      await done.catch(() => undefined);
      for (const n of await readdir(o.dir).catch(() => [] as string[])) if (n.endsWith('.part')) await unlink(join(o.dir, n)).catch(() => undefined);
    },
  };
}
