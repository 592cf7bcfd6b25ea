/**
 * A source's options (how its agent reads it) checked against its kind, at `source add` and at
 * each edit, so that a source the server accepts is one its agent can sync: the refusals of the
 * agent's tracker choice, and the options only one kind reads.
 */
import { HoldfastError } from '../core/errors.js';
import type { SourceKindWire, SourceOptions } from '../core/protocol.js';

/** An edit of a source's options: a given key replaces that option, null removes it, others stay. */
export type SourceOptionsPatch = { [K in keyof SourceOptions]?: SourceOptions[K] | null };

const TRACKERS: Record<SourceKindWire, string[]> = {
  dir: ['auto', 'full'],
  image: ['auto', 'full', 'qcow2-bitmap'],
  btrfs: ['auto', 'full', 'btrfs'],
  postgres: ['auto', 'full'],
  sqlite: ['auto', 'full'],
};

export function checkSourceOptions(source: string, kind: SourceKindWire, o: SourceOptions): void {
  const refuse = (why: string): never => {
    throw new HoldfastError('BAD_ARGUMENT', `source '${source}' (${kind}): ${why}`, { source });
  };
  if (o.tracker !== undefined && !TRACKERS[kind].includes(o.tracker)) refuse(`tracker '${o.tracker}' cannot track it (${TRACKERS[kind].join(', ')})`);
  if (o.qemu && kind !== 'image') refuse('a running QEMU (qemu) serves image sources only');
  if (o.postgres && kind !== 'postgres') refuse('postgres options are for postgres sources');
  if (kind === 'postgres' && !o.postgres?.connect) refuse('a postgres source needs postgres.connect (how the agent reaches the database server)');
  if (o.sqlite && kind !== 'sqlite') refuse('sqlite options are for sqlite sources');
}

export function patchSourceOptions(old: SourceOptions, patch: SourceOptionsPatch): SourceOptions {
  const next: Record<string, unknown> = { ...old };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  return next;
}
