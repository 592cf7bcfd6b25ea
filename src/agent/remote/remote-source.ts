/**
 * The ChunkSource of a server job: chunks read from the server as stored (zstd or raw) and
 * verified here, by the agent, before use. Requests are split to keep bodies near 16 MiB and
 * run a few at a time.
 */
import type { ChunkSource } from '../../core/chunk-io.js';
import { decodeFrames } from '../../core/chunk-frames.js';
import { decodeMany, type StoredChunk } from '../../core/codec.js';
import { HoldfastError } from '../../core/errors.js';
import type { ChunkRef } from '../../core/manifest.js';
import type { ServerClient } from './server-client.js';

const BODY_BYTES = 16 * 1024 * 1024;
const MAX_REFS = 4096;
const PARALLEL = 4;

export class RemoteSource implements ChunkSource {
  receivedBytes = 0;

  constructor(
    private readonly client: ServerClient,
    private readonly jobId: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  async read(refs: ChunkRef[], signal?: AbortSignal): Promise<Uint8Array[]> {
    const stored = await this.readEncoded(refs, signal);
    const { out, placed } = decodeMany(stored);
    return placed.map((p, i) => {
      if (!p.ok) throw new HoldfastError('CHUNK_CORRUPT', `chunk ${refs[i]?.[0]} from the server is damaged: ${p.reason}`, { digest: refs[i]?.[0] });
      return out.subarray(p.offset, p.offset + p.length);
    });
  }

  async readEncoded(refs: ChunkRef[], signal?: AbortSignal): Promise<StoredChunk[]> {
    const groups: ChunkRef[][] = [];
    let cur: ChunkRef[] = [];
    let bytes = 0;
    for (const r of refs) {
      if (cur.length > 0 && (bytes + r[1] > BODY_BYTES || cur.length >= MAX_REFS)) {
        groups.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(r);
      bytes += r[1];
    }
    if (cur.length > 0) groups.push(cur);
    const results = new Array<StoredChunk[]>(groups.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < groups.length) {
        const i = next++;
        const g = groups[i] as ChunkRef[];
        const body = await this.client.binary('POST', `/api/v1/agent/jobs/${this.jobId}/read`, { type: 'application/json', data: JSON.stringify({ refs: g }) }, { signal, retries: 5, headers: this.headers });
        this.receivedBytes += body.length;
        const frames = decodeFrames(body);
        if (frames.length !== g.length) throw new HoldfastError('SERVER_ERROR', `asked the server for ${g.length} chunks, got ${frames.length}`);
        results[i] = frames.map((f, k) => {
          const want = g[k] as ChunkRef;
          if (f.digest !== want[0] || f.length !== want[1]) throw new HoldfastError('CHUNK_CORRUPT', `the server sent chunk ${f.digest} for ${want[0]}`, { digest: want[0] });
          // Own buffer per chunk: restore moves chunk buffers to workers in batches of its choosing.
          return { digest: f.digest, length: f.length, flags: f.flags, data: new Uint8Array(f.data) };
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, groups.length) }, worker));
    return results.flat();
  }
}
