/**
 * Upload bodies (application/octet-stream: chunk frames) read into a kept large buffer
 * (workers/big-buffers.ts) instead of fastify's collect-and-concat, which gives every 4 MiB body
 * fresh memory: on these VMs touching it costs more than verifying and storing the chunks. The
 * route gives the buffer back (releaseUploadBody) once the chunks are stored — the pack writer
 * copies what it keeps — so the next upload reuses it. Limits and errors as fastify's own reader.
 */
import type { IncomingMessage } from 'node:http';
import { bigBuffer, keepBigBuffer } from '../workers/big-buffers.js';

class BodyError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function readUploadBody(payload: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(payload.headers['content-length']);
  const known = Number.isSafeInteger(declared) && declared >= 0;
  const tooLarge = (): BodyError => new BodyError(413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'Request body is too large');
  const mismatch = (): BodyError => new BodyError(400, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 'Request body size did not match Content-Length');
  if (known && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    // Without a declared length (chunked), the pieces are gathered and joined as fastify does.
    const into = known ? bigBuffer(declared) : undefined;
    const pieces: Buffer[] = [];
    let received = 0;
    const stop = (err: Error): void => {
      payload.off('data', onData);
      payload.off('end', onEnd);
      payload.off('error', onError);
      payload.off('close', onClose);
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (received + chunk.length > (into ? into.length : limit)) {
        stop(into ? mismatch() : tooLarge());
        return;
      }
      if (into) chunk.copy(into, received);
      else pieces.push(chunk);
      received += chunk.length;
    };
    const onEnd = (): void => {
      payload.off('data', onData);
      payload.off('error', onError);
      payload.off('close', onClose);
      if (into && received !== into.length) reject(mismatch());
      else resolve(into ?? Buffer.concat(pieces, received));
    };
    const onError = (err: Error): void => stop(Object.assign(err, { statusCode: 400 }));
    // The agent went away mid-body: no 'end' will come.
    const onClose = (): void => stop(new BodyError(400, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 'the request ended before its body did'));
    payload.on('data', onData);
    payload.once('end', onEnd);
    payload.once('error', onError);
    payload.once('close', onClose);
    payload.resume();
  });
}

/** The body's memory may serve the next upload: nothing refers to `stored` (its last view) any more. */
export function releaseUploadBody(stored: Uint8Array): void {
  keepBigBuffer(stored.buffer);
}
