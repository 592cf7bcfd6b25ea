/**
 * The change applied before step (c), identical for every tool and every run: random
 * bytes over 64 KiB-aligned regions of the image (1% of it), part of some small files
 * rewritten in place, and some new small files.
 */
import type { DatasetPlan, SmallFile } from './dataset-plan.js';
import { Prng } from './prng.js';

/** An in-place rewrite of `length` bytes at `offset`, with content from PRNG `stream`. */
export interface Rewrite {
  readonly offset: number;
  readonly length: number;
  readonly stream: number;
}

/** A small file and the part of it the change rewrites (same kind of content as before). */
export interface FileRewrite extends Rewrite {
  readonly file: SmallFile;
}

/** Everything the change step does. */
export interface ChangePlan {
  readonly regions: readonly Rewrite[];
  readonly files: readonly FileRewrite[];
  readonly added: readonly SmallFile[];
}

const CHANGE_STREAM = 0x0c4a_0000;
const REGION_STREAM_BASE = 0x5000_0000;
const FILE_REWRITE_STREAM_BASE = 0x6000_0000;

function distinct(prng: Prng, count: number, below: number): number[] {
  const picked = new Set<number>();
  while (picked.size < count) picked.add(prng.below(below));
  return [...picked];
}

/** The change for the data set in `plan`. */
export function planChange(plan: DatasetPlan): ChangePlan {
  const { spec } = plan;
  const prng = new Prng(spec.seed, CHANGE_STREAM);
  const regionSlots = spec.imageBytes / spec.changedRegionBytes;
  const regions = distinct(prng, spec.changedRegions, regionSlots)
    .sort((a, b) => a - b)
    .map((slot, i) => ({ offset: slot * spec.changedRegionBytes, length: spec.changedRegionBytes, stream: REGION_STREAM_BASE + i }));
  const files = distinct(prng, spec.modifiedFiles, spec.fileCount).map((index, i) => {
    const file = plan.smallFile(index);
    // A quarter of the file (at least 1 byte) at a random place.
    const length = Math.max(1, Math.floor(file.size / 4));
    const offset = prng.below(file.size - length + 1);
    return { file, offset, length, stream: FILE_REWRITE_STREAM_BASE + i };
  });
  const added = Array.from({ length: spec.addedFiles }, (_, i) => plan.addedFile(i));
  return { regions, files, added };
}
