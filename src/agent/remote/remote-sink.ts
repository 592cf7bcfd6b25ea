/**
 * The ChunkSink of a server sync: `want` calls made close together travel as one request, new
 * chunks are framed into bodies of about 4 MiB as they are put (copied: the caller may reuse
 * their memory once put() settles) and uploaded, MAX_IN_FLIGHT bodies in flight while the next
 * is filled, under the group's bandwidth limit. `flush()` returns once the server has every chunk
 * put so far.
 */
import type { ChunkSink, NewChunk } from '../../core/chunk-io.js';
import { FRAME_MANIFEST, frameLength, writeFrame } from '../../core/chunk-frames.js';
import type { RequestOptions, ServerClient } from './server-client.js';
import type { Throttle } from './throttle.js';

const BODY_BYTES = 4 * 1024 * 1024;
// Two bodies in flight keep the link busy; more only cost the server memory when many agents sync.
const MAX_IN_FLIGHT = 2;
const WANT_BATCH = 4096;
/** A body's buffer: BODY_BYTES and the largest chunk (1 MiB) that may push it over, with its frame. */
const BODY_ALLOC = BODY_BYTES + 1024 * 1024 + 64 * 1024;
/** Bodies kept for the next uploads: enough for two syncs at once (an agent's default). */
const SPARE_BODIES = 2 * (MAX_IN_FLIGHT + 1);

/**
 * Bodies of finished uploads, kept for the next ones apart from the big-buffer store, where file
 * reads took them. Fresh memory is what a fresh agent's first sync pays for most (page faults,
 * page clearing): with bodies from that store, and filled ahead of free upload slots, a first
 * 100 MiB sync touched 25-38 MiB of new body memory; a sync now holds at most MAX_IN_FLIGHT + 1.
 */
const spareBodies: ArrayBuffer[] = [];

function newBody(need: number): Buffer {
  if (need > BODY_ALLOC) return Buffer.allocUnsafeSlow(need);
  return Buffer.from(spareBodies.pop() ?? new ArrayBuffer(BODY_ALLOC));
}

function keepBody(b: ArrayBufferLike): void {
  if (b instanceof ArrayBuffer && b.byteLength === BODY_ALLOC && spareBodies.length < SPARE_BODIES) spareBodies.push(b);
}

interface WantWaiter {
  digests: string[];
  resolve: (w: boolean[]) => void;
  reject: (e: unknown) => void;
}

export class RemoteSink implements ChunkSink {
  sentBytes = 0;
  /** the body being filled, and how much of it is */
  private body: Buffer | undefined;
  private bodyBytes = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private wantQueue: WantWaiter[] = [];
  private wantCount = 0;
  private wantScheduled = false;

  constructor(
    private readonly client: ServerClient,
    private readonly jobId: string,
    readonly compressionLevel: number,
    private readonly throttle: Throttle | undefined,
    private readonly signal?: AbortSignal,
    /** the job attempt's header: a request of a stale attempt is refused */
    private readonly headers: Record<string, string> = {},
    /** told of each upload retry (busy or unreachable server), so a waiting sync says why */
    private readonly onRetry?: RequestOptions['onRetry'],
  ) {}

  want(digests: string[]): Promise<boolean[]> {
    if (digests.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.wantQueue.push({ digests, resolve, reject });
      this.wantCount += digests.length;
      if (this.wantCount >= WANT_BATCH) this.sendWants();
      else if (!this.wantScheduled) {
        this.wantScheduled = true;
        setImmediate(() => this.sendWants());
      }
    });
  }

  private sendWants(): void {
    this.wantScheduled = false;
    const batch = this.wantQueue;
    if (batch.length === 0) return;
    this.wantQueue = [];
    this.wantCount = 0;
    const all = batch.flatMap((w) => w.digests);
    const parts: Array<Promise<boolean[]>> = [];
    for (let i = 0; i < all.length; i += 8192) {
      parts.push(this.client.json<{ want: boolean[] }>('POST', `/api/v1/agent/jobs/${this.jobId}/want`, { digests: all.slice(i, i + 8192) }, { signal: this.signal, retries: 5, headers: this.headers }).then((r) => r.want));
    }
    Promise.all(parts).then(
      (answers) => {
        const flat = answers.flat();
        let o = 0;
        for (const w of batch) {
          w.resolve(flat.slice(o, o + w.digests.length));
          o += w.digests.length;
        }
      },
      (err: unknown) => batch.forEach((w) => w.reject(err)),
    );
  }

  async put(chunks: NewChunk[]): Promise<void> {
    if (this.failure) throw this.failure;
    for (const c of chunks) {
      const frame = { digest: c.digest, length: c.length, flags: c.encoded.flags | (c.manifest ? FRAME_MANIFEST : 0), data: c.encoded.data };
      const need = frameLength(frame);
      // A full body is sent (once an upload slot is free) before the next is begun: bodies
      // filled ahead of the uploads each took fresh memory. Another put() may fill or send the
      // body while this one waits, so the room is checked again.
      while (this.body && this.bodyBytes + need > this.body.length) await this.sendBody(this.body);
      if (!this.body) {
        // Bodies of finished uploads are reused: fresh ones cost page faults and, as external
        // memory growing fast, full garbage collections of the agent's heap.
        this.body = newBody(need);
        this.bodyBytes = 0;
      }
      this.bodyBytes = writeFrame(this.body, this.bodyBytes, frame);
      if (this.bodyBytes >= BODY_BYTES) await this.sendBody(this.body);
    }
  }

  /**
   * Sends `body`, the one being filled, when an upload slot is free, unless another put() did
   * meanwhile; throws the first upload error.
   */
  private async sendBody(body: Buffer): Promise<void> {
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    if (this.body !== body) return;
    const [whole, length] = this.takeBody();
    // Taken into the slot before any await, so that no other body passes the check meanwhile.
    const p: Promise<void> = this.upload(whole, length).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private takeBody(): [Buffer, number] {
    const taken: [Buffer, number] = [this.body as Buffer, this.bodyBytes];
    this.body = undefined;
    this.bodyBytes = 0;
    return taken;
  }

  /** Uploads a body (under the bandwidth limit); a failure is kept for put() and flush() to throw. */
  private async upload(whole: Buffer, length: number): Promise<void> {
    const body = whole.subarray(0, length);
    try {
      await this.throttle?.take(body.length, this.signal);
      await this.client.binary('POST', `/api/v1/agent/jobs/${this.jobId}/chunks`, { type: 'application/octet-stream', data: body }, { signal: this.signal, retries: 5, headers: this.headers, onRetry: this.onRetry });
      this.sentBytes += body.length;
      // The server answered after reading the whole body: nothing refers to it any more.
      keepBody(whole.buffer);
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    }
  }

  /** Sends what is buffered and waits for every upload; throws the first upload error. */
  async flush(): Promise<void> {
    if (this.body && this.bodyBytes > 0) await this.sendBody(this.body);
    else if (this.body) keepBody(this.takeBody()[0].buffer);
    await Promise.all([...this.inFlight]);
    if (this.failure) throw this.failure;
  }
}
