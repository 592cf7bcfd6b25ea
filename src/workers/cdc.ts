/**
 * Content-defined chunking for the hot paths (the codec workers' split and the agent's re-chunk):
 * the native cutter when the addon has it, src/core/chunker.ts's JavaScript otherwise. Both give
 * the same cut points (src/workers/cdc.test.ts); the native one is several times faster and
 * needs no JIT warm-up in a fresh process.
 */
import { cdcMasks, cdcNext as jsNext, cdcSplit as jsSplit, type CdcParams } from '../core/chunker.js';
import { cdcCuts, hasCdcCuts } from '../native/index.js';

/** Lengths of one native call; a buffer with more chunks takes several calls. */
const lengths = new Uint32Array(1024);
const one = new Uint32Array(1);

/** Sizes the native cutter takes (it checks them again itself); others go to the JS. */
function nativeFits(p: CdcParams): boolean {
  const ok = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
  return hasCdcCuts && ok(p.min) && ok(p.avg) && ok(p.max);
}

/** core/chunker.ts's cdcSplit: all complete chunk lengths in buf; `rest` awaits more data. */
export function cdcSplit(buf: Uint8Array, p: CdcParams, final: boolean): { lengths: number[]; rest: number } {
  if (!nativeFits(p)) return jsSplit(buf, p, final);
  const masks = cdcMasks(p.avg);
  const out: number[] = [];
  let pos = 0;
  for (;;) {
    const n = cdcCuts(pos === 0 ? buf : buf.subarray(pos), p, masks, final, lengths);
    for (let i = 0; i < n; i++) {
      const len = lengths[i] as number;
      out.push(len);
      pos += len;
    }
    if (n < lengths.length) break;
  }
  return { lengths: out, rest: buf.length - pos };
}

/** core/chunker.ts's cdcNext: the length of the next chunk of buf[start, end), 0 when it needs more data. */
export function cdcNext(buf: Uint8Array, start: number, end: number, p: CdcParams, final: boolean): number {
  if (!nativeFits(p) || !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > buf.length) return jsNext(buf, start, end, p, final);
  if (end <= start) return 0;
  return cdcCuts(buf.subarray(start, end), p, cdcMasks(p.avg), final, one) === 1 ? (one[0] as number) : 0;
}
