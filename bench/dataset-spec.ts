/**
 * The parameters of the benchmark data set, derived from `--scale`: a 2 GiB mixed-content
 * disk image and 20,000 small files at scale 1, plus the change applied before step (c).
 * Everything that decides the bytes on disk is here, so the marker can compare specs.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Bumped whenever generation changes the bytes it writes for the same parameters. */
export const DATASET_FORMAT = 1;

/** Everything that decides the data set's bytes. */
export interface DatasetSpec {
  readonly format: number;
  readonly seed: number;
  readonly scale: number;
  readonly imageBytes: number;
  /** Image runs are this long at least and at most; lengths are multiples of 4 KiB. */
  readonly runMinBytes: number;
  readonly runMaxBytes: number;
  readonly fileCount: number;
  readonly fileMinBytes: number;
  readonly fileMaxBytes: number;
  /** Sub-folders per folder over three levels; leaves hold about 20 files each. */
  readonly fanout: number;
  /** Change before step (c): image regions (64 KiB each) and small files. */
  readonly changedRegions: number;
  readonly changedRegionBytes: number;
  readonly modifiedFiles: number;
  readonly addedFiles: number;
}

function atLeastOne(value: number): number {
  return Math.max(1, Math.round(value));
}

/** The data set for `scale` (1 = full size). */
export function datasetSpec(scale: number): DatasetSpec {
  const regionBytes = 64 * KiB;
  const imageBytes = atLeastOne((2 * GiB * scale) / regionBytes) * regionBytes;
  const fileCount = atLeastOne(20_000 * scale);
  const leaves = Math.ceil(fileCount / 20);
  return {
    format: DATASET_FORMAT,
    seed: 0x486f6c64, // "Hold"
    scale,
    imageBytes,
    runMinBytes: 64 * KiB,
    runMaxBytes: 4 * MiB,
    fileCount,
    fileMinBytes: 1 * KiB,
    fileMaxBytes: 64 * KiB,
    fanout: Math.max(1, Math.ceil(Math.cbrt(leaves))),
    // 320 x 64 KiB is 1% of 2 GiB; never more regions than the image has.
    changedRegions: Math.min(atLeastOne(320 * scale), imageBytes / regionBytes),
    changedRegionBytes: regionBytes,
    modifiedFiles: Math.min(atLeastOne(100 * scale), fileCount),
    addedFiles: atLeastOne(100 * scale),
  };
}
