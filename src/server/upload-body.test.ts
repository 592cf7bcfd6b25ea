import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { readUploadBody, releaseUploadBody } from './upload-body.js';

/** A request body stream with headers, fed in pieces. */
function request(pieces: Buffer[], headers: Record<string, string>): IncomingMessage {
  const s = new PassThrough() as unknown as IncomingMessage & PassThrough;
  Object.assign(s, { headers });
  setImmediate(() => {
    for (const p of pieces) s.write(p);
    s.end();
  });
  return s;
}

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255));
const status = (err: unknown): number => (err as { statusCode: number }).statusCode;

describe('readUploadBody', () => {
  it('reads a body of its declared length, in pieces, into one buffer', async () => {
    const data = bytes(3 * 1024 * 1024 + 17, 1);
    const body = await readUploadBody(request([data.subarray(0, 65536), data.subarray(65536, 2_000_000), data.subarray(2_000_000)], { 'content-length': String(data.length) }), 40 << 20);
    assert.ok(body.equals(data));
  });

  it('reuses a released body for the next upload, which then holds only its own bytes', async () => {
    const a = bytes(2 * 1024 * 1024, 2);
    const first = await readUploadBody(request([a], { 'content-length': String(a.length) }), 40 << 20);
    const memory = first.buffer;
    releaseUploadBody(first);
    const b = bytes(2 * 1024 * 1024 - 5, 3);
    const second = await readUploadBody(request([b], { 'content-length': String(b.length) }), 40 << 20);
    assert.equal(second.buffer, memory, 'the same memory took the second body');
    assert.ok(second.equals(b));
  });

  it('refuses a declared length over the limit with 413 before reading', async () => {
    await assert.rejects(readUploadBody(request([bytes(10, 4)], { 'content-length': String(50 << 20) }), 40 << 20), (err) => status(err) === 413);
  });

  it('refuses a body longer or shorter than declared with 400', async () => {
    await assert.rejects(readUploadBody(request([bytes(100, 5)], { 'content-length': '99' }), 1 << 20), (err) => status(err) === 400);
    await assert.rejects(readUploadBody(request([bytes(98, 6)], { 'content-length': '99' }), 1 << 20), (err) => status(err) === 400);
  });

  it('refuses a body whose request closes before it ends', async () => {
    const s = new PassThrough() as unknown as IncomingMessage & PassThrough;
    Object.assign(s, { headers: { 'content-length': '100' } });
    setImmediate(() => {
      s.write(bytes(10, 9));
      s.destroy();
    });
    await assert.rejects(readUploadBody(s, 1 << 20), (err) => status(err) === 400);
  });

  it('reads a body without a declared length up to the limit, and refuses more with 413', async () => {
    const data = bytes(5000, 7);
    assert.ok((await readUploadBody(request([data.subarray(0, 100), data.subarray(100)], {}), 5000)).equals(data));
    await assert.rejects(readUploadBody(request([data, bytes(1, 8)], {}), 5000), (err) => status(err) === 413);
  });
});
