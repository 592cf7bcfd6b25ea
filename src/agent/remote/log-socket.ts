/**
 * The agent daemon's local hand-off for log shipping: a Unix socket (<stateDir>/log.sock) that
 * `holdfast log-push` (PostgreSQL's archive_command) connects to with one log record. The
 * daemon ships it (log-shipper.ts) and answers only after the server said it is durable; the
 * command then exits 0. Anything else is a non-zero exit, and PostgreSQL keeps the segment and
 * tries again later, which is the whole retry story: nothing is queued on the agent.
 *
 * Request:  one JSON line {source, key, name, bytes}, then exactly `bytes` bytes.
 * Answer:   one JSON line {ok: true, seq, time, duplicate} or {ok: false, code, message}.
 *
 * The socket is reachable by any local user (the state directory is made traversable, 0711, and
 * the socket 0666), because the database server runs as its own user; each request must carry
 * the per-source key the agent generated (kept in <stateDir>/log-sources.json, 0600) and wrote
 * into the archive_command, which only the database's owner can read.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HoldfastError, errnoCode, isHoldfastError } from '../../core/errors.js';
import type { CodecPool } from '../../workers/codec-pool.js';
import { shipLog, type ShippedLog } from './log-shipper.js';
import type { ServerClient } from './server-client.js';

export const LOG_SOCKET = 'log.sock';
const KEYS_FILE = 'log-sources.json';
/** a WAL segment is 16 MiB by default; PostgreSQL allows up to 1 GiB, the route up to ~32 MiB of frames */
const MAX_LOG_BYTES = 30 * 1024 * 1024;
/** how often a record still on its way is reported */
const SLOW_SHIP_MS = 30_000;

export type LogSourceKind = 'pg-wal' | 'sqlite-wal';
interface KeyEntry {
  key: string;
  kind: LogSourceKind;
}

async function readKeys(stateDir: string): Promise<Record<string, KeyEntry>> {
  try {
    return JSON.parse(await readFile(join(stateDir, KEYS_FILE), 'utf8')) as Record<string, KeyEntry>;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return {};
    throw err;
  }
}

/** The source's log key (made on first use, then kept): what archive_command must present. */
export async function logSourceKey(stateDir: string, source: string, kind: LogSourceKind): Promise<string> {
  const keys = await readKeys(stateDir);
  const cur = keys[source];
  if (cur && cur.kind === kind) return cur.key;
  keys[source] = { key: randomBytes(24).toString('base64url'), kind };
  const tmp = join(stateDir, `${KEYS_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, join(stateDir, KEYS_FILE));
  return keys[source].key;
}

/** PostgreSQL WAL file facts from its name (and size): timeline and segment number. */
export function pgWalMeta(name: string, size: number): Record<string, unknown> {
  const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/.exec(name);
  if (m) {
    const segSize = size > 0 ? size : 16 * 1024 * 1024;
    const perLog = 0x100000000 / segSize;
    return { timeline: parseInt(m[1] as string, 16), segno: parseInt(m[2] as string, 16) * perLog + parseInt(m[3] as string, 16), segSize };
  }
  const h = /^([0-9A-F]{8})\.history$/.exec(name);
  if (h) return { timeline: parseInt(h[1] as string, 16), history: true };
  return {};
}

export interface LogSocketOptions {
  stateDir: string;
  client: ServerClient;
  codec: CodecPool;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** test hook: called after the record arrived, before it is shipped */
  onRequest?: (source: string, name: string) => void;
}

export async function startLogSocket(o: LogSocketOptions): Promise<Server> {
  const path = join(o.stateDir, LOG_SOCKET);
  await unlink(path).catch(() => undefined); // a dead daemon's socket
  // Traversable, not listable: the database's user reaches the socket, nothing else.
  await chmod(o.stateDir, 0o711);
  const server = createServer((sock) => void handle(sock, o));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o666);
  server.unref();
  return server;
}

function reply(sock: Socket, body: Record<string, unknown>): void {
  sock.end(`${JSON.stringify(body)}\n`);
}

async function handle(sock: Socket, o: LogSocketOptions): Promise<void> {
  sock.on('error', () => undefined);
  try {
    const { head, data } = await readRequest(sock);
    const keys = await readKeys(o.stateDir);
    const entry = typeof head.source === 'string' ? keys[head.source] : undefined;
    const key = Buffer.from(typeof head.key === 'string' ? head.key : '');
    if (!entry || key.length !== Buffer.byteLength(entry.key) || !timingSafeEqual(key, Buffer.from(entry.key))) {
      throw new HoldfastError('UNAUTHORIZED', `unknown source or wrong key for log shipping (source '${String(head.source)}')`);
    }
    const name = String(head.name);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(name)) throw new HoldfastError('BAD_ARGUMENT', `log name '${name}' is not valid`);
    o.onRequest?.(head.source as string, name);
    const meta = entry.kind === 'pg-wal' ? pgWalMeta(name, data.length) : head.meta && typeof head.meta === 'object' ? (head.meta as Record<string, unknown>) : {};
    const started = Date.now();
    // PostgreSQL waits on this answer and archives nothing else meanwhile: say so when it is long.
    let stage = 'encoding';
    const slow = setInterval(() => o.log.warn({ source: head.source, log: name, stage, ms: Date.now() - started }, 'log shipping is slow: the record is not durable on the server yet'), SLOW_SHIP_MS);
    let r: ShippedLog;
    try {
      r = await shipLog(o.client, o.codec, head.source as string, { name, kind: entry.kind, meta, data }, {
        onStage: (s) => (stage = s),
        onRetry: (err, waitMs) => o.log.warn({ source: head.source, log: name, code: err.code, err: err.message, waitMs }, 'log upload will be tried again'),
      });
    } finally {
      clearInterval(slow);
    }
    // latencyMs: from the moment log-push started (archive_command's call) to durable on the server.
    const latencyMs = typeof head.started === 'number' ? Date.now() - head.started : undefined;
    o.log.info({ source: head.source, log: name, seq: r.seq, duplicate: r.duplicate, ms: Date.now() - started, latencyMs }, 'log shipped');
    reply(sock, { ok: true, ...r });
  } catch (err) {
    const code = isHoldfastError(err) ? err.code : 'AGENT_ERROR';
    o.log.warn({ err: (err as Error).message }, 'log shipping failed; the database keeps the log and tries again');
    reply(sock, { ok: false, code, message: (err as Error).message });
  }
}

function readRequest(sock: Socket): Promise<{ head: Record<string, unknown>; data: Buffer }> {
  return new Promise((resolve, reject) => {
    // Pieces are kept and joined once: a segment arrives in hundreds of socket reads.
    let pending: Buffer[] = [];
    let have = 0;
    let head: Record<string, unknown> | undefined;
    let want = 0;
    const fail = (e: Error): void => {
      sock.removeAllListeners('data');
      reject(e);
    };
    sock.on('data', (d: Buffer) => {
      pending.push(d);
      have += d.length;
      if (!head) {
        const buf = pending.length === 1 ? d : Buffer.concat(pending);
        const nl = buf.indexOf(10);
        if (nl < 0) {
          pending = [buf];
          if (buf.length > 65536) fail(new HoldfastError('BAD_ARGUMENT', 'log request header too long'));
          return;
        }
        try {
          head = JSON.parse(buf.subarray(0, nl).toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail(new HoldfastError('BAD_ARGUMENT', 'log request header is not JSON'));
        }
        want = Number(head.bytes);
        if (!Number.isInteger(want) || want < 0 || want > MAX_LOG_BYTES) return fail(new HoldfastError('BAD_ARGUMENT', `log size ${String(head.bytes)} is not accepted (at most ${MAX_LOG_BYTES} bytes)`));
        const rest = buf.subarray(nl + 1);
        pending = [rest];
        have = rest.length;
      }
      if (head && have >= want) {
        sock.removeAllListeners('data');
        resolve({ head, data: Buffer.concat(pending, have).subarray(0, want) });
      }
    });
    sock.once('end', () => fail(new HoldfastError('BAD_ARGUMENT', 'log request ended early')));
  });
}

/** The client side (`holdfast log-push`): sends one record, resolves with the daemon's answer. */
export function pushLog(socketPath: string, req: { source: string; key: string; name: string; meta?: Record<string, unknown>; started?: number }, data: Buffer, timeoutMs = 600_000): Promise<{ seq: number; time: string; duplicate: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new HoldfastError('SERVER_UNREACHABLE', `the agent did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(new HoldfastError('SERVER_UNREACHABLE', `cannot reach the Holdfast agent at ${socketPath}: ${err.message}`));
    });
    sock.on('connect', () => {
      sock.write(`${JSON.stringify({ ...req, bytes: data.length })}\n`);
      sock.write(data);
    });
    sock.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    sock.on('end', () => {
      clearTimeout(timer);
      let r: { ok?: boolean; code?: string; message?: string; seq?: number; time?: string; duplicate?: boolean };
      try {
        r = JSON.parse(out) as typeof r;
      } catch {
        return reject(new HoldfastError('SERVER_ERROR', `the agent closed the connection without an answer${out ? `: ${out.slice(0, 200)}` : ''}`));
      }
      if (r.ok && typeof r.seq === 'number' && typeof r.time === 'string') resolve({ seq: r.seq, time: r.time, duplicate: r.duplicate === true });
      else reject(new HoldfastError('SERVER_ERROR', `log '${req.name}' was not stored: ${r.code ?? 'ERROR'}: ${r.message ?? 'no reason given'}`));
    });
  });
}
