import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeFrames } from '../../core/chunk-frames.js';
import { digestOf } from '../../core/digest.js';
import { RemoteSink } from './remote-sink.js';
import type { ServerClient } from './server-client.js';

test('chunks put are framed at once: the caller may reuse their bytes when put() settles, and every body carries them intact', async () => {
  const bodies: Buffer[] = [];
  // A stand-in for the HTTPS client: records each upload body (as the server would read it) after a delay.
  const client = {
    binary: async (_m: string, _path: string, body: { data: Uint8Array }) => {
      const copy = Buffer.from(body.data);
      await new Promise((r) => setTimeout(r, 5));
      bodies.push(copy);
      return Buffer.alloc(0);
    },
  } as unknown as ServerClient;
  const sink = new RemoteSink(client, 'job', 0, undefined);
  const shared = Buffer.alloc(1024 * 1024);
  const plains: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const plain = randomBytes(512 * 1024 + i);
    plains.push(plain);
    shared.set(plain);
    await sink.put([{ digest: digestOf(plain), length: plain.length, encoded: { flags: 0, data: shared.subarray(0, plain.length) } }]);
    shared.fill(0xee);
  }
  await sink.flush();
  assert.ok(bodies.length >= 2, 'the chunks took more than one body');
  const frames = bodies.flatMap((b) => decodeFrames(b));
  assert.equal(frames.length, plains.length);
  frames.forEach((f, i) => {
    const plain = plains[i] as Buffer;
    assert.equal(f.digest, digestOf(plain));
    assert.ok(Buffer.from(f.data).equals(plain), `chunk ${i} travels as put`);
  });
  assert.equal(sink.sentBytes, bodies.reduce((n, b) => n + b.length, 0));
});
