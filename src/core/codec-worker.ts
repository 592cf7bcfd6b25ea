/**
 * Worker thread body: hashing, compression and verified decompression off the main thread.
 * Hashed buffers stay here ("held") until the main thread says which chunks it wants encoded,
 * so chunk data crosses threads once, not three times.
 */
import { parentPort } from 'node:worker_threads';
import { decodeMany, encodeMany, splitAndHash } from './codec.js';
import { transferList, type CodecRequest, type CodecResponse } from './codec-pool.js';

const held = new Map<number, Uint8Array[]>();

function reply(res: CodecResponse, buffers: Uint8Array[] = []): void {
  parentPort?.postMessage(res, transferList(buffers));
}

parentPort?.on('message', (msg: CodecRequest) => {
  try {
    switch (msg.op) {
      case 'hash': {
        held.set(msg.id, msg.items.map((it) => it.buf));
        reply({ id: msg.id, op: 'hash', items: msg.items.map((it) => splitAndHash(it.buf, it.rule, it.detectZero)) });
        return;
      }
      case 'encodeHeld': {
        const bufs = held.get(msg.holdId);
        held.delete(msg.holdId);
        if (!bufs) throw new Error(`no held buffers for job ${msg.holdId}`);
        const { out, placed } = encodeMany(msg.pieces.map(([item, off, len]) => (bufs[item] as Uint8Array).subarray(off, off + len)), msg.level);
        reply({ id: msg.id, op: 'encoded', out, placed }, [out]);
        return;
      }
      case 'encode': {
        const { out, placed } = encodeMany(msg.items, msg.level);
        reply({ id: msg.id, op: 'encoded', out, placed }, [out]);
        return;
      }
      case 'decode': {
        const { out, placed } = decodeMany(msg.items);
        reply({ id: msg.id, op: 'decoded', out, placed }, [out]);
        return;
      }
    }
  } catch (err) {
    reply({ id: msg.id, op: 'error', message: (err as Error).stack ?? String(err) });
  }
});
