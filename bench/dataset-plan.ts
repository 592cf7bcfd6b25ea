/**
 * Where each piece of the data set goes and what it holds, computed from the spec
 * alone: the image's runs of random, text-like and zero content, and each small file's
 * path, size and kind. Generation and the change step both read this plan.
 */
import type { ContentKind } from './content.js';
import type { DatasetSpec } from './dataset-spec.js';
import { Prng } from './prng.js';

/** One run of the image: `length` bytes of `kind` at `offset`, drawn from PRNG `stream`. */
export interface ImageRun {
  readonly offset: number;
  readonly length: number;
  readonly kind: ContentKind;
  readonly stream: number;
}

/** One small file (path relative to the files folder); its bytes come from PRNG `stream`. */
export interface SmallFile {
  readonly path: string;
  readonly size: number;
  readonly kind: ContentKind;
  readonly stream: number;
}

// PRNG stream numbers, kept apart so the parts of the data set never share a sequence.
const LAYOUT_STREAM = 1;
const RUN_STREAM_BASE = 0x1000_0000;
const FILE_STREAM_BASE = 0x2000_0000;
const ADDED_FILE_STREAM_BASE = 0x3000_0000;
const CONTENT_STREAM_OFFSET = 0x4000_0000; // a file's bytes, apart from its size and kind draws
const PAGE = 4096;

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** The deterministic plan of the data set described by `spec`. */
export class DatasetPlan {
  constructor(readonly spec: DatasetSpec) {}

  /** The image's runs in order; kinds come in shuffled triples so each is about a third. */
  imageRuns(): ImageRun[] {
    const { imageBytes, runMinBytes, runMaxBytes, seed } = this.spec;
    const prng = new Prng(seed, LAYOUT_STREAM);
    const runs: ImageRun[] = [];
    let kinds: ContentKind[] = [];
    for (let offset = 0; offset < imageBytes; ) {
      if (kinds.length === 0) {
        kinds = ['random', 'text', 'zero'];
        for (let i = kinds.length - 1; i > 0; i--) {
          const j = prng.below(i + 1);
          [kinds[i], kinds[j]] = [kinds[j] ?? 'zero', kinds[i] ?? 'zero'];
        }
      }
      const kind = kinds.pop() ?? 'zero';
      const length = Math.min(imageBytes - offset, prng.between(runMinBytes / PAGE, runMaxBytes / PAGE) * PAGE);
      runs.push({ offset, length, kind, stream: RUN_STREAM_BASE + runs.length });
      offset += length;
    }
    return runs;
  }

  /** The folder (relative to the files folder) that holds leaf number `leaf`. */
  leafDir(leaf: number): string {
    const f = this.spec.fanout;
    const width = String(f - 1).length;
    return [Math.floor(leaf / (f * f)) % f, Math.floor(leaf / f) % f, leaf % f].map((n) => `d${pad(n, width)}`).join('/');
  }

  private leafCount(): number {
    return this.spec.fanout ** 3;
  }

  private file(prefix: string, index: number, stream: number): SmallFile {
    const { fileMinBytes, fileMaxBytes, seed } = this.spec;
    const prng = new Prng(seed, stream);
    const size = prng.between(fileMinBytes, fileMaxBytes);
    const kind: ContentKind = prng.below(2) === 0 ? 'random' : 'text';
    const name = `${prefix}${pad(index, 5)}.${kind === 'text' ? 'txt' : 'bin'}`;
    const path = `${this.leafDir(index % this.leafCount())}/${name}`;
    return { path, size, kind, stream: stream + CONTENT_STREAM_OFFSET };
  }

  /** Small file number `index` of the original data set. */
  smallFile(index: number): SmallFile {
    return this.file('f', index, FILE_STREAM_BASE + index);
  }

  /** New file number `index` that the change step adds. */
  addedFile(index: number): SmallFile {
    return this.file('n', index, ADDED_FILE_STREAM_BASE + index);
  }
}
