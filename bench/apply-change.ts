/**
 * Applies the change of step (c) to the data set in place (pwrite over the image, keeping
 * its size; part of some small files rewritten; new small files added), after saving an
 * undo log and marking the data set as changed.
 */
import { mkdir, open, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { planChange } from './change-plan.js';
import type { Rewrite } from './change-plan.js';
import { fillContent } from './content.js';
import type { ContentKind } from './content.js';
import type { DatasetPlan } from './dataset-plan.js';
import type { MarkerFile } from './dataset-marker.js';
import { Prng } from './prng.js';
import { UndoLog } from './undo-log.js';
import type { SavedRange } from './undo-log.js';
import type { WorkLayout } from './work-layout.js';

/** What the change did, for the report. */
export interface ChangeSummary {
  readonly imageRegions: number;
  readonly imageBytes: number;
  readonly modifiedFiles: number;
  readonly modifiedBytes: number;
  readonly addedFiles: number;
  readonly addedBytes: number;
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    if (bytesRead !== length) throw new Error(`short read of ${path} at ${offset}: ${bytesRead} of ${length} bytes`);
    return buffer;
  } finally {
    await handle.close();
  }
}

async function rewrite(path: string, parts: readonly (Rewrite & { kind: ContentKind })[], seed: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    for (const part of parts) {
      const bytes = Buffer.alloc(part.length);
      fillContent(part.kind, bytes, new Prng(seed, part.stream));
      const { bytesWritten } = await handle.write(bytes, 0, bytes.length, part.offset);
      if (bytesWritten !== bytes.length) throw new Error(`short write to ${path} at ${part.offset}`);
    }
  } finally {
    await handle.close();
  }
}

/** Changes the pristine data set; `revertChange` puts it back. */
export async function applyChange(layout: WorkLayout, plan: DatasetPlan, markerFile: MarkerFile): Promise<ChangeSummary> {
  const change = planChange(plan);
  const imageName = relative(layout.sourceDir, layout.imagePath);
  const ranges: SavedRange[] = [
    ...change.regions.map((r) => ({ path: imageName, offset: r.offset, length: r.length })),
    ...change.files.map((f) => ({ path: relative(layout.sourceDir, join(layout.filesDir, f.file.path)), offset: f.offset, length: f.length })),
  ];
  const saved: Buffer[] = [];
  for (const r of ranges) saved.push(await readRange(join(layout.sourceDir, r.path), r.offset, r.length));
  const added = change.added.map((f) => relative(layout.sourceDir, join(layout.filesDir, f.path)));
  await new UndoLog(layout.undoDir).write({ ranges, added }, Buffer.concat(saved));

  const marker = await markerFile.read();
  if (marker === undefined) throw new Error(`data set marker ${layout.markerPath} vanished before the change`);
  await markerFile.write({ ...marker, state: 'changed' });

  const { seed } = plan.spec;
  await rewrite(layout.imagePath, change.regions.map((r) => ({ ...r, kind: 'random' as const })), seed);
  for (const f of change.files) {
    await rewrite(join(layout.filesDir, f.file.path), [{ ...f, kind: f.file.kind }], seed);
  }
  for (const file of change.added) {
    const path = join(layout.filesDir, file.path);
    await mkdir(dirname(path), { recursive: true });
    const bytes = Buffer.alloc(file.size);
    fillContent(file.kind, bytes, new Prng(seed, file.stream));
    await writeFile(path, bytes);
  }
  const sum = (xs: readonly { length: number }[]): number => xs.reduce((a, x) => a + x.length, 0);
  return {
    imageRegions: change.regions.length,
    imageBytes: sum(change.regions),
    modifiedFiles: change.files.length,
    modifiedBytes: sum(change.files),
    addedFiles: change.added.length,
    addedBytes: change.added.reduce((a, f) => a + f.size, 0),
  };
}
