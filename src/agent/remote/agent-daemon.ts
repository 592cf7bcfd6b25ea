/**
 * The agent: it opens every connection (no inbound port on the production host), says hello
 * (the server then requeues whatever it thought this agent was running, so a restart resumes
 * where it stood), sends heartbeats, and long-polls for jobs with a few pollers at once.
 * Network trouble means backoff with jitter, from 1 s up to 30 s; a revoked agent stops.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { join, resolve } from 'node:path';
import { HoldfastError } from '../../core/errors.js';
import type { HelloReply, JobSpec } from '../../core/protocol.js';
import { CodecPool } from '../../workers/codec-pool.js';
import { changeJournals } from '../journal-registry.js';
import { shipSqliteSource, stopSqliteShipping, type SqliteSourceInfo } from '../databases/sqlite-agent.js';
import { keepSpareDaemons } from '../trackers/storage-daemon.js';
import { joinServer, loadAgentState, type AgentState } from './agent-state.js';
import { runJob } from './job-runner.js';
import { shipLog } from './log-shipper.js';
import { startLogSocket, LOG_SOCKET } from './log-socket.js';
import { ServerClient } from './server-client.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AgentOptions {
  stateDir: string;
  server?: string;
  join?: string;
  name?: string;
  /** jobs run at once */
  jobs?: number;
  signal: AbortSignal;
  log: AgentLog;
  onReady?: (s: AgentState) => void;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((r) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      r();
    }
    signal.addEventListener('abort', done, { once: true });
  });

function fatal(err: unknown): boolean {
  return err instanceof HoldfastError && (err.code === 'UNAUTHORIZED' || err.code === 'FORBIDDEN');
}

class Backoff {
  private ms = 0;
  next(): number {
    this.ms = Math.min(30_000, this.ms === 0 ? 1000 : this.ms * 2);
    return this.ms / 2 + Math.random() * (this.ms / 2);
  }
  reset(): void {
    this.ms = 0;
  }
}

export async function runAgent(o: AgentOptions): Promise<void> {
  const stateDir = resolve(o.stateDir);
  let state = await loadAgentState(stateDir);
  if (state && o.server && new URL(o.server).origin !== new URL(state.server).origin) {
    throw new HoldfastError('CONFLICT', `the agent state in ${stateDir} belongs to ${state.server}, not ${o.server}; use another --state`);
  }
  if (!state) {
    if (!o.server || !o.join) throw new HoldfastError('BAD_ARGUMENT', `no agent state in ${stateDir}: join first with --server URL --join TOKEN`);
    state = await joinServer(stateDir, o.server, o.join, o.name);
    o.log.info({ agent: state.name, id: state.agentId, server: state.server }, 'joined the protection server');
  }
  const client = new ServerClient(state.server, { ca: state.ca, cert: state.cert, key: state.key }, 16);
  const codec = new CodecPool();
  const running = new Set<string>();
  /** jobs this process gave up because the server was unreachable: told in the next hello */
  const abandoned = new Set<string>();
  const run = randomBytes(8).toString('hex');
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // every request of every running job listens to it
  const onAbort = (): void => stop.abort();
  o.signal.addEventListener('abort', onAbort, { once: true });
  let failure: Error | undefined;
  const quit = (err: unknown): void => {
    failure ??= err instanceof Error ? err : new Error(String(err));
    stop.abort();
  };
  try {
    const backoff = new Backoff();
    let hello: HelloReply | undefined;
    while (!hello && !stop.signal.aborted) {
      try {
        hello = await client.json<HelloReply>('POST', '/api/v1/agent/hello', { version: AGENT_VERSION, hostname: hostname(), run, abandoned: [] }, { signal: stop.signal, timeoutMs: 15_000 });
      } catch (err) {
        if (fatal(err)) throw err;
        if (stop.signal.aborted) break;
        const wait = backoff.next();
        o.log.warn({ err: (err as Error).message, retryInMs: Math.round(wait) }, 'server unreachable');
        await sleep(wait, stop.signal);
      }
    }
    if (!hello) return;
    o.log.info({ agent: hello.name, server: state.server }, 'agent connected');
    // Codec workers start now, while the daemon is idle, not inside its first sync's time.
    codec.warm();
    // Offline qcow2 sources: each sync leaves a qemu-storage-daemon started for the next one.
    void keepSpareDaemons(true);
    // Change journals of dir sources start now: a sync may trust one only from its start on.
    const journal = (source: { name: string; kind: string; path: string }): void => {
      if (source.kind !== 'dir') return;
      try {
        changeJournals.watch(source.name, source.path, [stateDir]);
      } catch (err) {
        o.log.warn({ source: source.name, err: (err as Error).message }, 'cannot start the change journal; syncs of this source read everything');
      }
    };
    // SQLite sources: a WAL shipper each, from now on (and from a new source's first sync).
    const sqlite = (source: SqliteSourceInfo): void =>
      shipSqliteSource(source, {
        stateDir: join(stateDir, 'trackers'),
        log: o.log,
        ship: async (name, r) => {
          await shipLog(client, codec, name, { name: r.name, kind: 'sqlite-wal', meta: { ...r.meta }, data: r.data }, { signal: stop.signal });
        },
      });
    try {
      const sources = await client.json<SqliteSourceInfo[]>('GET', '/api/v1/agent/sources', undefined, { signal: stop.signal, timeoutMs: 15_000 });
      for (const s of sources) journal(s);
      for (const s of sources) sqlite(s);
    } catch (err) {
      if (fatal(err)) throw err;
      o.log.warn({ err: (err as Error).message }, 'cannot list sources; their change journals start with their first sync');
    }
    // The local hand-off for database logs (archive_command → holdfast log-push → here → server).
    const logSocket = await startLogSocket({ stateDir, client, codec, log: o.log });
    stop.signal.addEventListener('abort', () => logSocket.close(), { once: true });
    o.onReady?.(state);
    const heartbeat = async (): Promise<void> => {
      const b = new Backoff();
      while (!stop.signal.aborted) {
        await sleep(hello.heartbeatMs, stop.signal);
        if (stop.signal.aborted) return;
        try {
          await client.json('POST', '/api/v1/agent/heartbeat', { running: [...running] }, { signal: stop.signal, timeoutMs: 15_000 });
          b.reset();
        } catch (err) {
          if (fatal(err)) return quit(err);
          if (!stop.signal.aborted) o.log.warn({ err: (err as Error).message }, 'heartbeat failed');
        }
      }
    };
    const poller = async (): Promise<void> => {
      const b = new Backoff();
      let wasDown = false;
      while (!stop.signal.aborted) {
        let spec: JobSpec | undefined;
        try {
          if (wasDown) {
            // The server may have restarted: say hello again so it requeues our interrupted jobs.
            const gaveUp = [...abandoned];
            await client.json('POST', '/api/v1/agent/hello', { version: AGENT_VERSION, hostname: hostname(), run, abandoned: gaveUp }, { signal: stop.signal, timeoutMs: 15_000 });
            for (const id of gaveUp) abandoned.delete(id);
            wasDown = false;
          }
          spec = await client.json<JobSpec | undefined>('GET', `/api/v1/agent/jobs/next?wait=20&run=${run}`, undefined, { signal: stop.signal, timeoutMs: 40_000 });
          b.reset();
        } catch (err) {
          if (fatal(err)) return quit(err);
          if (stop.signal.aborted) return;
          wasDown = true;
          const wait = b.next();
          o.log.warn({ err: (err as Error).message, retryInMs: Math.round(wait) }, 'cannot reach the server');
          await sleep(wait, stop.signal);
          continue;
        }
        if (!spec) continue;
        running.add(spec.id);
        if (spec.type === 'sync') journal(spec.source);
        if (spec.type === 'sync') sqlite({ ...spec.source, syncEveryMs: spec.syncEveryMs });
        o.log.info({ job: spec.id, type: spec.type, source: spec.source.name }, 'job started');
        try {
          const result = await runJob({ client, codec, exclude: [stateDir], stateDir: join(stateDir, 'trackers'), agentStateDir: stateDir, logSocket: join(stateDir, LOG_SOCKET), signal: stop.signal, log: o.log }, spec);
          o.log.info({ job: spec.id, ok: result !== undefined, point: result?.point }, 'job ended');
        } catch (err) {
          if (!stop.signal.aborted) {
            wasDown = true;
            abandoned.add(spec.id);
            o.log.warn({ job: spec.id, err: (err as Error).message }, 'job interrupted; the server will hand it out again');
          }
        } finally {
          running.delete(spec.id);
        }
      }
    };
    await Promise.all([heartbeat(), ...Array.from({ length: o.jobs ?? 2 }, poller)]);
    if (failure) throw failure;
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    changeJournals.stopAll();
    await stopSqliteShipping();
    await keepSpareDaemons(false);
    await codec.close();
    await client.close();
  }
}
