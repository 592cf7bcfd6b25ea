/**
 * NbdClient against a real qemu-nbd: a qcow2 image written with qemu-io before and after a
 * persistent dirty bitmap was added, exported read-only with the bitmap. The dirty extents, the
 * allocation map and the bytes must match what QEMU's own tools say. These tests need qemu-utils
 * and fail, loudly, without it. A second, scripted server plays what qemu-nbd never does here
 * (partial block status answers, split and reordered reads, error chunks, protocol violations).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldfastError } from '../../core/errors.js';
import { ByteQueue } from './byte-queue.js';
import { NbdClient, type ByteRange } from './nbd-client.js';
import { NbdConnectionError, NbdHandshakeError, NbdProtocolError, NbdRangeError, NbdRequestError } from './nbd-errors.js';
import { NBD_STATE_HOLE, NBD_STATE_ZERO, NbdDecodeError, encodeRequest, parseBlockStatus, parseErrorChunk } from './nbd-protocol.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const IMAGE_SIZE = 64 * MiB;
const GRANULARITY = 64 * KiB; // qemu's default bitmap granularity, and qcow2's default cluster size
const BEFORE_BITMAP = { pattern: 0x11, offset: 0, length: 1 * MiB };
const AFTER_BITMAP = [
  { pattern: 0x22, offset: 5 * MiB, length: 4 * KiB },
  { pattern: 0x33, offset: 20 * MiB, length: 64 * KiB },
  { pattern: 0x55, offset: 30 * MiB - 2 * KiB, length: 4 * KiB }, // straddles a granule boundary
  { pattern: 0x44, offset: 40 * MiB, length: 1 * MiB },
];
const CONTEXTS = ['qemu:dirty-bitmap:b0', 'base:allocation'];

// ---- helpers ----

function requireTool(name: string): void {
  const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) throw new Error(`'${name}' is not available: these tests need real QEMU tools (apt-get install qemu-utils)`);
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function qemuWrite(img: string, w: { pattern: number; offset: number; length: number }): void {
  run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`, img]);
}

/** Ranges widened to whole granules, sorted and merged: what a dirty bitmap records. */
function toGranules(ranges: ByteRange[], granule: number): ByteRange[] {
  const out: ByteRange[] = [];
  const sorted = ranges
    .map((r) => ({ start: Math.floor(r.offset / granule) * granule, end: Math.ceil((r.offset + r.length) / granule) * granule }))
    .sort((a, b) => a.start - b.start);
  for (const { start, end } of sorted) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length >= start) last.length = Math.max(last.offset + last.length, end) - last.offset;
    else out.push({ offset: start, length: end - start });
  }
  return out;
}

function complement(ranges: ByteRange[], size: number): ByteRange[] {
  const out: ByteRange[] = [];
  let pos = 0;
  for (const r of ranges) {
    if (r.offset > pos) out.push({ offset: pos, length: r.offset - pos });
    pos = r.offset + r.length;
  }
  if (pos < size) out.push({ offset: pos, length: size - pos });
  return out;
}

function probe(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts qemu-nbd (read-only, bitmap b0, persistent, shareable) and waits until it accepts connections. */
async function startQemuNbd(img: string, socketPath: string): Promise<ChildProcess> {
  const proc = spawn('qemu-nbd', ['-r', '-f', 'qcow2', '-B', 'b0', '-t', '-e', '8', '-k', socketPath, img], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  proc.on('error', (err) => (stderr += String(err)));
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    if (existsSync(socketPath) && (await probe(socketPath))) return proc;
  }
  proc.kill('SIGKILL');
  throw new Error(`qemu-nbd did not start on ${socketPath}: ${stderr || 'no output'}`);
}

async function kill(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await exited;
}

function sha256(buf: Buffer | Buffer[]): string {
  const h = createHash('sha256');
  for (const b of Array.isArray(buf) ? buf : [buf]) h.update(b);
  return h.digest('hex');
}

// ---- against qemu-nbd ----

describe('NbdClient against qemu-nbd', () => {
  let dir = '';
  let img = '';
  let sock = '';
  let raw = Buffer.alloc(0);
  let server: ChildProcess | undefined;
  let client: NbdClient | undefined;
  const expectedDirty = toGranules(AFTER_BITMAP, GRANULARITY);

  const c = (): NbdClient => {
    assert.ok(client, 'client connected in before()');
    return client;
  };

  before(async () => {
    for (const tool of ['qemu-img', 'qemu-io', 'qemu-nbd']) requireTool(tool);
    dir = mkdtempSync(join(tmpdir(), 'holdfast-nbd-'));
    img = join(dir, 'disk.qcow2');
    sock = join(dir, 'nbd.sock');
    run('qemu-img', ['create', '-f', 'qcow2', img, String(IMAGE_SIZE)]);
    qemuWrite(img, BEFORE_BITMAP);
    run('qemu-img', ['bitmap', '-f', 'qcow2', '--add', '--enable', img, 'b0']);
    for (const w of AFTER_BITMAP) qemuWrite(img, w);
    run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', img, join(dir, 'disk.raw')]);
    raw = readFileSync(join(dir, 'disk.raw'));
    server = await startQemuNbd(img, sock);
    client = await NbdClient.connect(sock, { metaContexts: CONTEXTS });
  });

  after(async () => {
    await client?.close().catch(() => undefined);
    await kill(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the handshake yields the size, read-only flag and both meta contexts', () => {
    assert.equal(c().size, IMAGE_SIZE);
    assert.equal(c().transmissionFlags & 0b11, 0b11, 'HAS_FLAGS and READ_ONLY');
    assert.deepEqual([...c().metaContextIds.keys()].sort(), [...CONTEXTS].sort());
  });

  test('dirtyExtents covers exactly the writes made after the bitmap, in 64 KiB granules', async (t) => {
    const dirty = await c().dirtyExtents('b0');
    assert.deepEqual(dirty, expectedDirty);
    assert.deepEqual(dirty, [
      { offset: 5 * MiB, length: 64 * KiB },
      { offset: 20 * MiB, length: 64 * KiB },
      { offset: 30 * MiB - 64 * KiB, length: 128 * KiB },
      { offset: 40 * MiB, length: 1 * MiB },
    ]);
    if (spawnSync('nbdinfo', ['--version'], { stdio: 'ignore' }).status !== 0) {
      t.diagnostic('nbdinfo (libnbd-bin) not installed: cross-check skipped');
      return;
    }
    const map = JSON.parse(run('nbdinfo', ['--json', '--map=qemu:dirty-bitmap:b0', `nbd+unix:///?socket=${sock}`])) as Array<ByteRange & { type: number }>;
    assert.deepEqual(toGranules(map.filter((e) => e.type & 1), 1), dirty, 'nbdinfo agrees');
  });

  test('read returns the written patterns, and zeros where nothing was written', async () => {
    for (const w of [BEFORE_BITMAP, ...AFTER_BITMAP]) {
      assert.deepEqual(await c().read(w.offset, w.length), Buffer.alloc(w.length, w.pattern), `pattern 0x${w.pattern.toString(16)}`);
    }
    assert.deepEqual(await c().read(2 * MiB, 1 * MiB), Buffer.alloc(1 * MiB));
    assert.deepEqual(await c().read(IMAGE_SIZE - 1 * MiB, 1 * MiB), Buffer.alloc(1 * MiB));
    const edge = await c().read(5 * MiB - 100, 200);
    assert.deepEqual(edge, Buffer.concat([Buffer.alloc(100), Buffer.alloc(100, 0x22)]), 'a read across a hole/data boundary');
    assert.equal((await c().read(7, 0)).length, 0);
  });

  test('the whole image read in 4 MiB pieces equals qemu-img convert -O raw', async () => {
    const pieces: Buffer[] = [];
    for (let off = 0; off < c().size; off += 4 * MiB) pieces.push(await c().read(off, 4 * MiB));
    assert.equal(sha256(pieces), sha256(raw));
  });

  test('base:allocation reports the unwritten regions as holes that read as zeros', async () => {
    const extents = await c().blockStatus(0, c().size, 'base:allocation');
    const holes = extents.filter((e) => e.flags & NBD_STATE_HOLE).map(({ offset, length }) => ({ offset, length }));
    const allocated = toGranules([BEFORE_BITMAP, ...AFTER_BITMAP], GRANULARITY);
    assert.deepEqual(toGranules(holes, 1), complement(allocated, IMAGE_SIZE));
    for (const e of extents) if (e.flags & NBD_STATE_HOLE) assert.equal(e.flags & NBD_STATE_ZERO, NBD_STATE_ZERO, `hole at ${e.offset} reads as zeros`);
    const partial = await c().blockStatus(5 * MiB - 10, 20, 'base:allocation');
    assert.deepEqual(partial, [
      { offset: 5 * MiB - 10, length: 10, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
      { offset: 5 * MiB, length: 10, flags: 0 },
    ]);
  });

  test('32 concurrent reads are pipelined and each gets its own bytes', async () => {
    // Offsets and sizes vary, so replies differ in length and in their mix of data and hole chunks.
    const ranges = Array.from({ length: 32 }, (_, i) => ({ offset: i * 2 * MiB - (i % 3) * 4 * KiB + (i === 0 ? 8 * KiB : 0), length: 64 * KiB + i * 12 * KiB }));
    const reads = ranges.map((r) => c().read(r.offset, r.length));
    assert.equal(c().inFlight, 32, 'all 32 requests sent before any reply');
    const results = await Promise.all(reads);
    results.forEach((buf, i) => {
      const r = ranges[i] as ByteRange;
      assert.ok(buf.equals(raw.subarray(r.offset, r.offset + r.length)), `read ${i} at ${r.offset}`);
    });
    assert.equal(c().inFlight, 0);
  });

  test('a read or block status past the end is rejected, naming the socket and export', async () => {
    const check = (err: unknown): boolean => err instanceof NbdRangeError && err.message.includes(sock) && /past the end/.test(err.message);
    await assert.rejects(c().read(IMAGE_SIZE - 4 * KiB, 8 * KiB), check);
    await assert.rejects(c().blockStatus(IMAGE_SIZE, 1, 'base:allocation'), check);
    await assert.rejects(c().blockStatus(0, 1, 'qemu:allocation-depth'), /was not negotiated/);
    assert.equal((await c().read(0, 4)).readUInt32BE(0), 0x11111111, 'the connection is still usable');
  });

  test('connecting to a socket that does not exist fails with a clear error naming it', async () => {
    const missing = join(dir, 'no-such.sock');
    await assert.rejects(NbdClient.connect(missing), (err: unknown) => {
      assert.ok(err instanceof NbdConnectionError);
      assert.match(err.message, /ENOENT/);
      assert.ok(err.message.includes(missing));
      return true;
    });
  });

  test('an unknown export or a missing bitmap fails the handshake clearly', async () => {
    await assert.rejects(NbdClient.connect(sock, { exportName: 'nope' }), (err: unknown) => err instanceof NbdHandshakeError && err.reply === 'NBD_REP_ERR_UNKNOWN' && err.message.includes("'nope'"));
    await assert.rejects(NbdClient.connect(sock, { metaContexts: ['qemu:dirty-bitmap:b9'] }), (err: unknown) => err instanceof NbdHandshakeError && /qemu:dirty-bitmap:b9.*qemu-nbd -B b9/.test(err.message));
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(NbdClient.connect(sock, { signal: aborted.signal }), (err: unknown) => err instanceof HoldfastError && err.code === 'ABORTED');
  });

  test('close sends NBD_CMD_DISC after requests in flight; later requests are refused', async () => {
    const other = await NbdClient.connect(sock);
    const reading = other.read(40 * MiB, 1 * MiB);
    await other.close();
    assert.deepEqual(await reading, Buffer.alloc(1 * MiB, 0x44));
    await assert.rejects(other.read(0, 1), (err: unknown) => err instanceof NbdConnectionError && /closed/.test(err.message));
    const again = await NbdClient.connect(sock);
    assert.equal(again.size, IMAGE_SIZE, 'qemu-nbd -t still serves');
    await again.close();
  });

  test('abort rejects one request at once; killing qemu-nbd rejects every pending one', async () => {
    const sock2 = join(dir, 'doomed.sock');
    const doomed = await startQemuNbd(img, sock2);
    try {
      const pid = doomed.pid as number;
      const victim = await NbdClient.connect(sock2, { metaContexts: CONTEXTS });
      // A stopped server reads nothing, so these requests are surely still pending.
      process.kill(pid, 'SIGSTOP');
      const ac = new AbortController();
      const abandoned = victim.read(0, 1 * MiB, ac.signal);
      ac.abort();
      await assert.rejects(abandoned, (err: unknown) => err instanceof HoldfastError && err.code === 'ABORTED');
      process.kill(pid, 'SIGCONT');
      assert.deepEqual(await victim.read(5 * MiB, 4 * KiB), Buffer.alloc(4 * KiB, 0x22));
      // qemu-nbd may answer out of order; the aborted read's late reply must still be read and dropped.
      for (const deadline = Date.now() + 5000; victim.inFlight > 0 && Date.now() < deadline; ) await sleep(5);
      assert.equal(victim.inFlight, 0, 'the late reply to the aborted read was consumed');

      process.kill(pid, 'SIGSTOP');
      const dropped = (err: unknown): boolean => err instanceof NbdConnectionError && err.message.includes(sock2) && /connection (closed|lost)/.test(err.message);
      const outcomes = [victim.read(40 * MiB, 1 * MiB), victim.dirtyExtents('b0'), victim.read(0, 4 * MiB)].map((p) => assert.rejects(p, dropped));
      assert.equal(victim.inFlight, 3);
      process.kill(pid, 'SIGKILL');
      await Promise.all(outcomes);
      await assert.rejects(victim.read(0, 1), NbdConnectionError);
      await victim.close();
    } finally {
      await kill(doomed);
    }
  });
});

// ---- against a scripted server ----

interface FakeRequest {
  type: number;
  cookie: Buffer;
  offset: number;
  length: number;
}

const SIZE = 1 * MiB;
const DIRTY_ID = 7;

function chunk(cookie: Buffer, type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32BE(0x668e33ef, 0);
  head.writeUInt16BE(flags, 4);
  head.writeUInt16BE(type, 6);
  cookie.copy(head, 8);
  head.writeUInt32BE(payload.length, 16);
  return Buffer.concat([head, payload]);
}

function optionReply(option: number, type: number, payload = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(20);
  head.writeBigUInt64BE(0x3e889045565a9n, 0);
  head.writeUInt32BE(option, 8);
  head.writeUInt32BE(type, 12);
  head.writeUInt32BE(payload.length, 16);
  return Buffer.concat([head, payload]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Speaks just enough NBD: grants one dirty bitmap context and hands each request to `answer`. */
async function serveScripted(socket: Socket, answer: (req: FakeRequest) => Buffer[]): Promise<void> {
  const q = new ByteQueue();
  socket.on('data', (d: Buffer) => q.push(d));
  socket.on('close', () => q.fail(new Error('closed')));
  socket.on('error', () => undefined);
  socket.write(Buffer.concat([Buffer.from('NBDMAGICIHAVEOPT'), Buffer.from([0, 3])]));
  await q.read(4);
  for (;;) {
    const head = await q.read(16);
    const option = head.readUInt32BE(8);
    const len = head.readUInt32BE(12);
    if (len > 0) await q.read(len);
    if (option === 10) {
      const ctx = Buffer.concat([Buffer.from([0, 0, 0, DIRTY_ID]), Buffer.from('qemu:dirty-bitmap:b0')]);
      socket.write(Buffer.concat([optionReply(10, 4, ctx), optionReply(10, 1)]));
    } else if (option === 7) {
      const info = Buffer.concat([Buffer.from([0, 0]), u64(SIZE), Buffer.from([0, 3])]);
      socket.write(Buffer.concat([optionReply(7, 3, info), optionReply(7, 1)]));
      break;
    } else {
      socket.write(optionReply(option, 1));
    }
  }
  for (;;) {
    const req = await q.read(28);
    if (req.readUInt16BE(6) === 2) return void socket.end(); // NBD_CMD_DISC
    socket.write(Buffer.concat(answer({ type: req.readUInt16BE(6), cookie: Buffer.from(req.subarray(8, 16)), offset: Number(req.readBigUInt64BE(16)), length: req.readUInt32BE(24) })));
  }
}

/** Dirty granules: every third 64 KiB, answered two descriptors at a time (a partial answer). */
function partialStatus(req: FakeRequest): Buffer[] {
  const payload = [Buffer.from([0, 0, 0, DIRTY_ID])];
  for (let pos = req.offset, n = 0; pos < req.offset + req.length && n < 2; n++) {
    const len = Math.min(GRANULARITY - (pos % GRANULARITY), req.offset + req.length - pos);
    const d = Buffer.alloc(8);
    d.writeUInt32BE(len, 0);
    d.writeUInt32BE(Math.floor(pos / GRANULARITY) % 3 === 0 ? 1 : 0, 4);
    payload.push(d);
    pos += len;
  }
  return [chunk(req.cookie, 5, 1, Buffer.concat(payload))];
}

/** The second half as data first, then the first half as a hole, then a NONE chunk ends it. */
function reorderedRead(req: FakeRequest): Buffer[] {
  const half = Math.floor(req.length / 2);
  const hole = Buffer.concat([u64(req.offset), Buffer.from([0, 0, 0, 0])]);
  hole.writeUInt32BE(half, 8);
  return [
    chunk(req.cookie, 1, 0, Buffer.concat([u64(req.offset + half), Buffer.alloc(req.length - half, 0xab)])),
    chunk(req.cookie, 2, 0, hole),
    chunk(req.cookie, 0, 1, Buffer.alloc(0)),
  ];
}

function errorChunk(req: FakeRequest, error: number, message: string): Buffer {
  const payload = Buffer.alloc(6);
  payload.writeUInt32BE(error, 0);
  payload.writeUInt16BE(Buffer.byteLength(message), 4);
  return chunk(req.cookie, 0x8001, 1, Buffer.concat([payload, Buffer.from(message)]));
}

describe('NbdClient against a scripted server', () => {
  let dir = '';
  let sock = '';
  let server: Server | undefined;
  let statusRequests = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'holdfast-nbd-fake-'));
    sock = join(dir, 'fake.sock');
    server = createServer((socket) => {
      serveScripted(socket, (req) => {
        if (req.type === 7) {
          statusRequests++;
          return partialStatus(req);
        }
        if (req.offset === 999) return [chunk(Buffer.alloc(8, 0xff), 0, 1, Buffer.alloc(0))]; // a cookie nobody sent
        // data placed past the end of the request it answers
        if (req.offset === 777) return [chunk(req.cookie, 1, 1, Buffer.concat([u64(req.offset + 8), Buffer.alloc(req.length, 0xcd)]))];
        if (req.offset >= SIZE / 2) return [errorChunk(req, 5, 'disk on fire')];
        return reorderedRead(req);
      }).catch(() => socket.destroy());
    });
    const listening = server;
    await new Promise<void>((resolve) => listening.listen(sock, resolve));
  });

  after(async () => {
    const s = server;
    if (s) await new Promise((resolve) => s.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('block status answered a little at a time is asked again until the range is covered', async () => {
    const client = await NbdClient.connect(sock, { metaContexts: ['qemu:dirty-bitmap:b0'] });
    statusRequests = 0;
    const dirty = await client.dirtyExtents('b0');
    const expected = [];
    for (let g = 0; g * GRANULARITY < SIZE; g += 3) expected.push({ offset: g * GRANULARITY, length: GRANULARITY });
    assert.deepEqual(dirty, expected);
    assert.equal(statusRequests, SIZE / GRANULARITY / 2);
    const middle = await client.blockStatus(100, 70_000, 'qemu:dirty-bitmap:b0');
    assert.deepEqual(middle, [
      { offset: 100, length: GRANULARITY - 100, flags: 1 },
      { offset: GRANULARITY, length: 70_100 - GRANULARITY, flags: 0 },
    ]);
    await client.close();
  });

  test('reordered data and hole chunks are reassembled', async () => {
    const client = await NbdClient.connect(sock);
    assert.deepEqual(await client.read(1000, 3000), Buffer.concat([Buffer.alloc(1500), Buffer.alloc(1500, 0xab)]));
    await client.close();
  });

  test('an error chunk rejects that request with the NBD error code; the connection stays usable', async () => {
    const client = await NbdClient.connect(sock);
    await assert.rejects(client.read(SIZE / 2, 4096), (err: unknown) => {
      assert.ok(err instanceof NbdRequestError);
      assert.equal(err.nbdError, 5);
      assert.equal(err.nbdErrorName, 'EIO');
      assert.match(err.message, /fake\.sock.*read of 4096 bytes at offset 524288 failed: EIO \(5\): disk on fire/);
      return true;
    });
    assert.equal((await client.read(0, 10)).length, 10);
    await client.close();
  });

  test('read data placed outside its request is a protocol violation, not written anywhere', async () => {
    const client = await NbdClient.connect(sock);
    await assert.rejects(client.read(777, 100), (err: unknown) => err instanceof NbdProtocolError && /outside the request/.test(err.message));
    await client.close();
  });

  test('a reply nobody asked for is a protocol violation that fails every pending request', async () => {
    const client = await NbdClient.connect(sock);
    const slow = client.read(0, 2000);
    const bad = client.read(999, 10);
    await assert.rejects(bad, NbdProtocolError);
    // The first request was answered before the bad reply arrived.
    assert.equal((await slow).length, 2000);
    await assert.rejects(client.read(0, 10), (err: unknown) => err instanceof NbdProtocolError && /matches no request/.test(err.message));
    await client.close();
  });
});

// ---- wire format ----

describe('NBD wire format', () => {
  test('request header layout', () => {
    const req = encodeRequest({ type: 7, flags: 8, cookie: 0x0102n, offset: 2 ** 40, length: 0xffff0000 });
    assert.equal(req.toString('hex'), '25609513' + '0008' + '0007' + '0000000000000102' + '0000010000000000' + 'ffff0000');
  });

  test('malformed chunks are decode errors', () => {
    assert.throws(() => parseBlockStatus(Buffer.from('0000000700000000', 'hex')), NbdDecodeError);
    assert.throws(() => parseBlockStatus(Buffer.from('000000070000000000000001', 'hex')), /zero length/);
    assert.throws(() => parseErrorChunk(0x8001, Buffer.from('00000005ffff', 'hex')), /overruns/);
    assert.deepEqual(parseErrorChunk(0x8002, Buffer.from('00000016' + '0002' + '6869' + '0000000000001000', 'hex')), { error: 22, message: 'hi', offset: 4096 });
  });
});
