/**
 * The marker file beside the data set: which spec generated it and whether it is
 * pristine or currently carries the change of step (c). Generation is skipped only when
 * the marker matches the requested spec and says pristine.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { DatasetSpec } from './dataset-spec.js';

/** What the marker records. */
export interface DatasetMarker {
  readonly spec: DatasetSpec;
  readonly state: 'pristine' | 'changed';
  readonly generatedAt: string;
}

/** Reads and writes the marker at one path; a missing or unreadable marker reads as undefined. */
export class MarkerFile {
  constructor(readonly path: string) {}

  async read(): Promise<DatasetMarker | undefined> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as DatasetMarker;
    } catch {
      return undefined;
    }
  }

  /** Replaces the marker atomically (write then rename). */
  async write(marker: DatasetMarker): Promise<void> {
    const temporary = `${this.path}.tmp`;
    await writeFile(temporary, `${JSON.stringify(marker, null, 2)}\n`);
    await rename(temporary, this.path);
  }

  /** True when `marker` describes exactly the data set `spec` asks for. */
  static matches(marker: DatasetMarker | undefined, spec: DatasetSpec): boolean {
    return marker !== undefined && JSON.stringify(marker.spec) === JSON.stringify(spec);
  }
}
