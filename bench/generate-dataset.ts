/**
 * Makes sure the data set on disk is the one the spec describes and is pristine:
 * skips generation when the marker matches, undoes a change left by an interrupted run,
 * and otherwise writes the image and the small files afresh with large buffers.
 */
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fillContent } from './content.js';
import { DatasetPlan } from './dataset-plan.js';
import type { DatasetSpec } from './dataset-spec.js';
import { MarkerFile } from './dataset-marker.js';
import { progress } from './log.js';
import { Prng } from './prng.js';
import { revertChange } from './revert-change.js';
import type { WorkLayout } from './work-layout.js';

const STAGING_BYTES = 16 * 1024 * 1024;

async function writeImage(path: string, plan: DatasetPlan, signal: AbortSignal): Promise<void> {
  const staging = Buffer.alloc(STAGING_BYTES); // own ArrayBuffer at offset 0: word-aligned fills
  const handle = await open(path, 'w');
  try {
    let used = 0;
    let position = 0;
    const flush = async (): Promise<void> => {
      for (let done = 0; done < used; ) {
        const { bytesWritten } = await handle.write(staging, done, used - done, position + done);
        done += bytesWritten;
      }
      position += used;
      used = 0;
    };
    for (const run of plan.imageRuns()) {
      signal.throwIfAborted();
      if (used + run.length > staging.length) await flush();
      fillContent(run.kind, staging.subarray(used, used + run.length), new Prng(plan.spec.seed, run.stream));
      used += run.length;
    }
    await flush();
  } finally {
    await handle.close();
  }
}

async function writeSmallFiles(filesDir: string, plan: DatasetPlan, signal: AbortSignal): Promise<void> {
  const buffer = Buffer.alloc(plan.spec.fileMaxBytes);
  const made = new Set<string>();
  for (let index = 0; index < plan.spec.fileCount; index++) {
    signal.throwIfAborted();
    const file = plan.smallFile(index);
    const path = join(filesDir, file.path);
    const dir = dirname(path);
    if (!made.has(dir)) {
      await mkdir(dir, { recursive: true });
      made.add(dir);
    }
    const bytes = buffer.subarray(0, file.size);
    fillContent(file.kind, bytes, new Prng(plan.spec.seed, file.stream));
    await writeFile(path, bytes);
  }
}

/** Leaves the pristine data set for `spec` under `layout.sourceDir`, generating it if needed. */
export async function ensureDataset(layout: WorkLayout, spec: DatasetSpec, signal: AbortSignal): Promise<void> {
  const markerFile = new MarkerFile(layout.markerPath);
  const marker = await markerFile.read();
  if (MarkerFile.matches(marker, spec)) {
    if (marker?.state === 'pristine') {
      progress(`data set in ${layout.sourceDir} is present and pristine; not regenerating`);
      return;
    }
    progress('data set carries a change from an interrupted run; undoing it');
    if (await revertChange(layout, markerFile)) return;
    progress('no undo log found; regenerating the data set');
  }
  await rm(layout.markerPath, { force: true });
  await rm(layout.sourceDir, { recursive: true, force: true });
  await rm(layout.undoDir, { recursive: true, force: true });
  await mkdir(layout.filesDir, { recursive: true });
  const plan = new DatasetPlan(spec);
  const started = Date.now();
  progress(`generating ${(spec.imageBytes / 2 ** 20).toFixed(1)} MiB image ${layout.imagePath}`);
  await writeImage(layout.imagePath, plan, signal);
  progress(`generating ${spec.fileCount} small files under ${layout.filesDir}`);
  await writeSmallFiles(layout.filesDir, plan, signal);
  await markerFile.write({ spec, state: 'pristine', generatedAt: new Date().toISOString() });
  progress(`data set generated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
