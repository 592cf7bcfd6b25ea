/**
 * Where a qcow2 image's dirty bitmaps live and how a point-in-time view of the image is read:
 * offline (a qemu-storage-daemon we start) or inside a running QEMU (QMP and image fleecing).
 * The qcow2 tracker drives either through this interface.
 */
import type { NbdClient } from '../nbd/nbd-client.js';

export interface BitmapInfo {
  name: string;
  /** recording writes now */
  enabled: boolean;
  /** QEMU marks it inconsistent (in-use after an unclean close): its record cannot be trusted */
  broken: boolean;
}

export interface ImageView {
  nbd: NbdClient;
  /** Guest bytes into `into` (returned), by the fastest way the view has: NBD unless given. */
  read?(offset: number, length: number, signal: AbortSignal | undefined, into: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export interface BitmapHost {
  /** 'offline' or 'live', for messages */
  readonly mode: string;
  /** the disk's size as the guest sees it */
  virtualSize(): Promise<number>;
  bitmaps(): Promise<BitmapInfo[]>;
  /**
   * The snapshot moment: adds `add` (persistent, recording) and stops `freeze` from recording,
   * merging them into `freeze[0]`; in a running QEMU, atomically with a point-in-time view.
   * No write can fall between `add` starting and the frozen ones stopping.
   */
  rotate(add: string, freeze: string[]): Promise<void>;
  /** The view taken at rotate() (or the image itself offline), with `bitmap` exposed if given. */
  open(bitmap: string | undefined): Promise<ImageView>;
  remove(names: string[]): Promise<void>;
  /** Undoes what a sync that did not finish left behind (fleecing nodes, exports, servers). */
  cleanup(): Promise<void>;
  /** Starts, in the background, what rotate() will need; called once the bitmaps are listed. */
  prepare(): void;
  /**
   * Lets go of the host (the QMP connection, a daemon we started); the image is left as it is.
   * With `wait`, returns only once nothing of ours has the image open any more.
   */
  close(wait?: boolean): Promise<void>;
}

/**
 * The bitmap part of the snapshot moment's QMP transaction on `node`: add `add` (persistent,
 * recording), stop `freeze` recording and merge all but the first into the first.
 */
export function rotationActions(node: string, add: string, freeze: string[]): Array<{ type: string; data: Record<string, unknown> }> {
  const [into, ...rest] = freeze;
  return [
    { type: 'block-dirty-bitmap-add', data: { node, name: add, persistent: true } },
    ...freeze.map((name) => ({ type: 'block-dirty-bitmap-disable', data: { node, name } })),
    ...(into !== undefined && rest.length > 0 ? [{ type: 'block-dirty-bitmap-merge', data: { node, target: into, bitmaps: rest } }] : []),
  ];
}
