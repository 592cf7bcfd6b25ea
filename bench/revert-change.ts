/**
 * Puts the data set back to pristine after the change step, from the undo log: original
 * bytes written back in place, added files deleted, marker set to pristine.
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import type { MarkerFile } from './dataset-marker.js';
import { UndoLog } from './undo-log.js';
import type { WorkLayout } from './work-layout.js';

const PAUSE_MS = 50;

/** Undoes the change; false when there is no undo log to undo it with. */
export async function revertChange(layout: WorkLayout, markerFile: MarkerFile): Promise<boolean> {
  const undo = new UndoLog(layout.undoDir);
  const log = await undo.read();
  if (log === undefined) return false;
  let at = 0;
  const firstPath = log.index.ranges[0]?.path;
  let paused = false;
  for (const range of log.index.ranges) {
    // The image's ranges come first. Pause before the small files so the image is never
    // the most recently changed file: borg 1.2 leaves files with the newest ctime out of
    // its files cache and would re-read the whole image in the nothing-changed step.
    if (!paused && range.path !== firstPath) {
      await setTimeout(PAUSE_MS);
      paused = true;
    }
    const handle = await open(join(layout.sourceDir, range.path), 'r+');
    try {
      await handle.write(log.bytes, at, range.length, range.offset);
    } finally {
      await handle.close();
    }
    at += range.length;
  }
  if (at !== log.bytes.length) throw new Error(`undo log ${layout.undoDir} holds ${log.bytes.length} bytes, index says ${at}`);
  for (const path of log.index.added) await rm(join(layout.sourceDir, path), { force: true });
  const marker = await markerFile.read();
  if (marker !== undefined) await markerFile.write({ ...marker, state: 'pristine' });
  await undo.remove();
  return true;
}
