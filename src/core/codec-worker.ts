/** Worker thread body: hashing, compression and verified decompression off the main thread. */
import { parentPort } from 'node:worker_threads';
import { decodeChunk, encodeChunk, splitAndHash } from './codec.js';
import { transferList as ownTransfer, type CodecRequest, type CodecResponse } from './codec-pool.js';


parentPort?.on('message', (msg: CodecRequest) => {
  let res: CodecResponse;
  try {
    if (msg.op === 'hash') {
      const out = msg.items.map((it) => ({ buf: it.buf, ...splitAndHash(it.buf, it.rule, it.detectZero) }));
      res = { id: msg.id, op: 'hash', items: out };
      parentPort?.postMessage(res, ownTransfer(out.map((o) => o.buf)));
      return;
    }
    if (msg.op === 'encode') {
      const out = msg.items.map((b) => encodeChunk(b, msg.level));
      res = { id: msg.id, op: 'encode', items: out };
      parentPort?.postMessage(res, ownTransfer(out.map((o) => o.data)));
      return;
    }
    const out = msg.items.map((it) => decodeChunk(it.data, it.flags, it.length, it.digest));
    res = { id: msg.id, op: 'decode', items: out };
    parentPort?.postMessage(res, ownTransfer(out.flatMap((o) => (o.ok ? [o.data] : []))));
  } catch (err) {
    parentPort?.postMessage({ id: msg.id, op: 'error', message: (err as Error).stack ?? String(err) } satisfies CodecResponse);
  }
});
