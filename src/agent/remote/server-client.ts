/**
 * HTTPS to the protection server, with the server pinned: the CA comes from the agent's state
 * (or, on first contact, from the server, accepted only if its SHA-256 matches the token's
 * fingerprint), and the certificate presented must be the server's (CN SERVER_CN), not another
 * agent's. Errors come back as HoldfastErrors with the server's code and message.
 */
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import { HoldfastError, isErrorCode } from '../../core/errors.js';
import { certFingerprint, SERVER_CN } from '../../core/tokens.js';

export interface Credentials {
  ca: string;
  cert?: string;
  key?: string;
  /** administrator bearer secret */
  bearer?: string;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** whole-request timeout; long polls pass more */
  timeoutMs?: number;
  /** for idempotent requests: try again this many times when the server is unreachable or busy */
  retries?: number;
  /** extra request headers */
  headers?: Record<string, string>;
  /** told of each retry before its wait (busy server, unreachable server) */
  onRetry?: (err: HoldfastError, waitMs: number) => void;
  /** how long BUSY answers are waited out before the request fails (default BUSY_PATIENCE_MS) */
  busyPatienceMs?: number;
}

/**
 * BUSY answers are the server's flow control and are waited out, but not for ever: a server that
 * has turned a request away for this long is stuck or overloaded, and a job that fails (and is run
 * again, and raises an alert) says so where a job that waits silently does not.
 */
export const BUSY_PATIENCE_MS = 15 * 60_000;

const retryable = (err: unknown): boolean => err instanceof HoldfastError && (err.code === 'SERVER_UNREACHABLE' || err.code === 'BUSY');

function checkServer(_host: string, cert: PeerCertificate): Error | undefined {
  const cn = cert.subject?.CN;
  return (Array.isArray(cn) ? cn[0] : cn) === SERVER_CN ? undefined : new Error(`the peer is not the Holdfast server (certificate subject ${String(cn)})`);
}

/** Fetches the server's CA certificate and accepts it only if it matches `fingerprint`. */
export async function fetchPinnedCa(url: string, fingerprint: string): Promise<string> {
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const res = await request(new URL('/api/v1/ca', url), { dispatcher: insecure, headersTimeout: 15_000, bodyTimeout: 15_000 });
    if (res.statusCode !== 200) throw new HoldfastError('SERVER_UNREACHABLE', `${url} did not hand out its CA certificate (HTTP ${res.statusCode})`);
    const body = (await res.body.json()) as { cert?: string };
    if (typeof body.cert !== 'string' || certFingerprint(body.cert) !== fingerprint) {
      throw new HoldfastError('UNAUTHORIZED', `the server at ${url} is not the one the token was made for (CA fingerprint mismatch)`);
    }
    return body.cert;
  } catch (err) {
    if (err instanceof HoldfastError) throw err;
    throw new HoldfastError('SERVER_UNREACHABLE', `cannot reach the protection server at ${url}: ${(err as Error).message}`);
  } finally {
    await insecure.close();
  }
}

/** see slices() */
export const WRITE_SLICE = 256 * 1024;

export class ServerClient {
  private readonly dispatcher: Agent;

  constructor(
    readonly url: string,
    private readonly creds: Credentials,
    connections = 8,
  ) {
    // One TLS context for every connection: made per connection, each parsed the CA, certificate
    // and key again (~1.7 ms here, for up to `connections` sockets per client).
    const secureContext = createSecureContext({ ca: creds.ca, cert: creds.cert, key: creds.key });
    const connect = buildConnector({ secureContext, checkServerIdentity: checkServer, timeout: 30_000 });
    this.dispatcher = new Agent({
      connections,
      keepAliveTimeout: 30_000,
      connect: (opts, done) => connect(opts, (err, socket) => (err ? done(err, null) : done(null, unbatched(socket as NonNullable<typeof socket>)))),
    });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  async json<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, o: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) }, o);
    if (res.statusCode === 204) {
      await res.body.dump();
      return undefined as T;
    }
    return (await res.body.json()) as T;
  }

  async binary(method: Dispatcher.HttpMethod, path: string, body: { type: string; data: Uint8Array | string }, o: RequestOptions = {}): Promise<Buffer> {
    const res = await this.send(method, path, body, o);
    return Buffer.from(await res.body.arrayBuffer());
  }

  private async send(method: Dispatcher.HttpMethod, path: string, body: { type: string; data: Uint8Array | string } | undefined, o: RequestOptions): Promise<Dispatcher.ResponseData> {
    let failures = 0;
    let busy = 0;
    let busySince: number | undefined;
    for (;;) {
      try {
        return await this.sendOnce(method, path, body, o);
      } catch (err) {
        if (!o.retries || !retryable(err) || o.signal?.aborted) throw err;
        // BUSY is the server's flow control, not a failure: wait and ask again, up to the patience.
        const isBusy = err instanceof HoldfastError && err.code === 'BUSY';
        if (!isBusy && ++failures > o.retries) throw err;
        if (isBusy) {
          busySince ??= Date.now();
          const waited = Date.now() - busySince;
          if (waited >= (o.busyPatienceMs ?? BUSY_PATIENCE_MS)) {
            throw new HoldfastError('BUSY', `${method} ${path}: the server at ${this.url} has answered busy for ${Math.round(waited / 1000)} s; giving up (its last answer: ${err.message})`, { url: this.url, waitedMs: waited }, { cause: err });
          }
        }
        const n = isBusy ? ++busy : failures;
        const wait = Math.min(isBusy ? 4000 : 8000, 250 * 2 ** n) * (0.5 + Math.random() / 2);
        o.onRetry?.(err as HoldfastError, Math.round(wait));
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async sendOnce(method: Dispatcher.HttpMethod, path: string, body: { type: string; data: Uint8Array | string } | undefined, o: RequestOptions): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { ...o.headers };
    if (body) headers['content-type'] = body.type;
    const large = body !== undefined && typeof body.data !== 'string' && body.data.length > WRITE_SLICE;
    if (large) headers['content-length'] = String(body.data.length);
    if (this.creds.bearer) headers.authorization = `Bearer ${this.creds.bearer}`;
    const timeout = o.timeoutMs ?? 120_000;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(new URL(path, this.url), {
        method,
        headers,
        // undici takes an iterable body (documented; its request() types do not say so)
        body: large ? (slices(body.data as Uint8Array) as unknown as Uint8Array) : body?.data,
        dispatcher: this.dispatcher,
        signal: o.signal,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      if (o.signal?.aborted) throw new HoldfastError('ABORTED', 'request aborted');
      throw new HoldfastError('SERVER_UNREACHABLE', `cannot reach the protection server at ${this.url}: ${(err as Error).message}`);
    }
    if (res.statusCode >= 400) {
      let code: unknown;
      let message = `HTTP ${res.statusCode}`;
      try {
        const e = ((await res.body.json()) as { error?: { code?: string; message?: string } }).error;
        code = e?.code;
        message = e?.message ?? message;
      } catch {
        // not JSON: keep the status line
      }
      throw new HoldfastError(isErrorCode(code) ? code : res.statusCode >= 500 ? 'SERVER_ERROR' : 'BAD_ARGUMENT', message, { status: res.statusCode });
    }
    return res;
  }
}

/**
 * A large body goes to the socket in slices. Node's TLS encrypts each write into a buffer of the
 * write's size, mapped fresh for a 4 MiB upload body: a fresh agent's first sync touched about
 * 33 MiB of such buffers (page faults and page clearing, the largest share of its memory growth).
 * Slices of WRITE_SLICE reuse the same few small buffers.
 */
export function* slices(data: Uint8Array): Generator<Uint8Array> {
  for (let at = 0; at < data.length; at += WRITE_SLICE) yield data.subarray(at, Math.min(at + WRITE_SLICE, data.length));
}

/**
 * A socket that writes what was corked one piece at a time. undici corks a request's head and
 * Buffer body together; written as one batch, Node's TLS copies both into one new body-sized
 * buffer before encrypting (a 4 MiB chunk upload: 4 MiB of fresh memory, about 1,000 page
 * faults, costing more than the encryption). Written apart, the body is encrypted where it lies.
 */
function unbatched<S extends object>(socket: S): S {
  (socket as { _writev?: unknown })._writev = null;
  return socket;
}
