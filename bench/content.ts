/**
 * Fills buffers with the three kinds of content the data set mixes: random bytes
 * (incompressible), text-like words from a fixed vocabulary (zstd compresses it about
 * five-fold) and zeros.
 */
import { Prng } from './prng.js';

/** The kinds of content in the image runs and small files. */
export type ContentKind = 'random' | 'text' | 'zero';

const VOCABULARY_SEED = 0x766f6361;
const VOCABULARY_SIZE = 1024;
const ZIPF_EXPONENT = 1.3;
const SLOT = 16; // each word (letters, then a space) padded to a fixed slot
const PICK_BITS = 16;

interface Vocabulary {
  readonly slots: Uint8Array;
  readonly lengths: Uint8Array;
  /** Maps 16 uniform random bits to a word index, Zipf-distributed like natural text. */
  readonly pick: Uint16Array;
}

let vocabulary: Vocabulary | undefined;

// Pseudo-words of 2-10 lowercase letters, weighted towards English letter frequencies.
function buildVocabulary(): Vocabulary {
  const letters = 'eeeeeeetttttaaaaoooiiinnnsssshhhrrrdddllcuumwfgypbvkjxqz';
  const prng = new Prng(VOCABULARY_SEED);
  const slots = new Uint8Array(VOCABULARY_SIZE * SLOT);
  const lengths = new Uint8Array(VOCABULARY_SIZE);
  for (let i = 0; i < VOCABULARY_SIZE; i++) {
    const length = prng.between(2, 10);
    for (let j = 0; j < length; j++) slots[i * SLOT + j] = letters.charCodeAt(prng.below(letters.length));
    slots[i * SLOT + length] = i % 13 === 12 ? NEWLINE : SPACE;
    lengths[i] = length + 1;
  }
  const weights = Array.from({ length: VOCABULARY_SIZE }, (_, i) => 1 / (i + 1) ** ZIPF_EXPONENT);
  const total = weights.reduce((a, b) => a + b, 0);
  const pick = new Uint16Array(1 << PICK_BITS);
  let word = 0;
  let cumulative = weights[0] ?? 0;
  for (let u = 0; u < pick.length; u++) {
    while ((u + 0.5) / pick.length > cumulative / total && word < VOCABULARY_SIZE - 1) cumulative += weights[++word] ?? 0;
    pick[u] = word;
  }
  return { slots, lengths, pick };
}

const SPACE = 0x20;
const NEWLINE = 0x0a;
const BATCH = 4096;

function fillText(out: Uint8Array, prng: Prng): void {
  vocabulary ??= buildVocabulary();
  const { slots, lengths, pick } = vocabulary;
  const draws = new Uint32Array(BATCH);
  const end = out.length;
  let at = 0;
  while (at < end) {
    prng.fill(new Uint8Array(draws.buffer));
    for (let d = 0; d < 2 * BATCH && at < end; d++) {
      const bits = d & 1 ? (draws[d >>> 1] ?? 0) >>> 16 : (draws[d >>> 1] ?? 0) & 0xffff;
      const index = pick[bits] ?? 0;
      const from = index * SLOT;
      const stop = Math.min(end, at + (lengths[index] ?? 0));
      for (let k = from; at < stop; k++) out[at++] = slots[k] ?? SPACE;
    }
  }
}

/** Fills `out` entirely with content of the given kind drawn from `prng`. */
export function fillContent(kind: ContentKind, out: Uint8Array, prng: Prng): void {
  switch (kind) {
    case 'random':
      prng.fill(out);
      return;
    case 'text':
      fillText(out, prng);
      return;
    case 'zero':
      out.fill(0);
      return;
  }
}
