import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeFrames } from '../../core/chunk-frames.js';
import { digestOf } from '../../core/digest.js';
import type { HoldfastError } from '../../core/errors.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RemoteSink } from './remote-sink.js';
import { ServerClient, WRITE_SLICE, slices } from './server-client.js';

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

test('puts running at once fill at most three bodies (two in flight, one being filled), each reused', async () => {
  const buffers = new Set<ArrayBufferLike>();
  let inFlight = 0;
  let most = 0;
  const frames: string[] = [];
  const client = {
    binary: async (_m: string, _path: string, body: { data: Uint8Array }) => {
      buffers.add(body.data.buffer);
      most = Math.max(most, ++inFlight);
      for (const f of decodeFrames(body.data)) frames.push(f.digest);
      await new Promise((r) => setTimeout(r, 10));
      inFlight--;
      return Buffer.alloc(0);
    },
  } as unknown as ServerClient;
  const sink = new RemoteSink(client, 'job', 0, undefined);
  const sent: string[] = [];
  // Eight callers at once (as the codec's encoded batches arrive), 12 MiB each.
  await Promise.all(
    Array.from({ length: 8 }, async (_, caller) => {
      for (let i = 0; i < 12; i++) {
        const plain = randomBytes(1024 * 1024 - caller * 1000 - i);
        const digest = digestOf(plain);
        sent.push(digest);
        await sink.put([{ digest, length: plain.length, encoded: { flags: 0, data: plain } }]);
      }
    }),
  );
  await sink.flush();
  assert.equal(most, 2, 'two uploads in flight at most');
  assert.ok(buffers.size <= 3, `bodies used: ${buffers.size}, more than two in flight and one being filled`);
  assert.deepEqual([...frames].sort(), [...sent].sort(), 'every chunk put was sent once');
});

test('a large body goes out in slices with its length, and is sent whole again after a BUSY answer', async () => {
  const received: Array<{ length: string | undefined; chunked: boolean; body: Buffer }> = [];
  let answers = 0;
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      received.push({ length: req.headers['content-length'], chunked: req.headers['transfer-encoding'] === 'chunked', body: Buffer.concat(parts) });
      if (answers++ === 0) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'BUSY', message: 'too many uploads at once' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = new ServerClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca: '' }, 1);
  try {
    const data = randomBytes(5 * 1024 * 1024 + 17);
    const pieces = [...slices(data)];
    assert.ok(pieces.length > 1 && pieces.every((p) => p.length <= WRITE_SLICE), 'written in slices');
    assert.ok(Buffer.concat(pieces).equals(data));
    await client.binary('POST', '/api/v1/agent/jobs/j/chunks', { type: 'application/octet-stream', data }, { retries: 2 });
    assert.equal(received.length, 2, 'sent, refused busy, sent again');
    for (const r of received) {
      assert.equal(r.length, String(data.length));
      assert.equal(r.chunked, false);
      assert.ok(r.body.equals(data), 'the body arrived intact');
    }
  } finally {
    await client.close();
    server.close();
  }
});

test('an upload the server answers BUSY is sent again, and each retry is told with its wait', async () => {
  // A plain-HTTP stand-in for the server's chunk route: BUSY twice, then stored.
  const bodies: number[] = [];
  let answers = 0;
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      if (answers++ < 2) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'BUSY', message: 'too many uploads at once' } }));
        return;
      }
      bodies.push(Buffer.concat(parts).length);
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = new ServerClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca: '' }, 1);
  try {
    const told: Array<{ code: string; waitMs: number }> = [];
    const sink = new RemoteSink(client, 'job', 0, undefined, undefined, {}, (err, waitMs) => told.push({ code: err.code, waitMs }));
    const plain = randomBytes(100_000);
    await sink.put([{ digest: digestOf(plain), length: plain.length, encoded: { flags: 0, data: plain } }]);
    await sink.flush();
    assert.equal(told.length, 2);
    for (const t of told) {
      assert.equal(t.code, 'BUSY');
      assert.ok(t.waitMs > 0);
    }
    assert.equal(bodies.length, 1, 'the body was stored once, after the retries');
    assert.equal(sink.sentBytes, bodies[0]);
  } finally {
    await client.close();
    server.close();
  }
});

test('a server that answers BUSY beyond the patience fails the request, saying for how long', async () => {
  let answers = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      answers++;
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'BUSY', message: 'too many uploads at once' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = new ServerClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca: '' }, 1);
  try {
    const started = Date.now();
    await assert.rejects(client.binary('POST', '/api/v1/agent/jobs/j/chunks', { type: 'application/octet-stream', data: Buffer.alloc(10) }, { retries: 5, busyPatienceMs: 1500 }), (err: HoldfastError) => {
      assert.equal(err.code, 'BUSY');
      assert.match(err.message, /POST \/api\/v1\/agent\/jobs\/j\/chunks: the server at .* has answered busy for \d+ s; giving up \(its last answer: too many uploads at once\)/);
      return true;
    });
    assert.ok(Date.now() - started >= 1500, 'waited out the patience first');
    assert.ok(answers > 2, 'asked again while within the patience');
  } finally {
    await client.close();
    server.close();
  }
});
