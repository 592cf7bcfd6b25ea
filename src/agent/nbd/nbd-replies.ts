/**
 * Assembly of one request's structured reply from its chunks. A read's data and hole chunks may
 * come in any order and split anyhow; they are placed into the caller's buffer and checked to
 * tile the requested range exactly. A block status reply carries one chunk per negotiated
 * context; the assembly keeps the one asked for. Error chunks are remembered and the request
 * fails once its final chunk arrives, so the stream stays in step. Anything the protocol rules
 * out throws NbdDecodeError, and the client then drops the connection.
 */
import {
  NbdDecodeError,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  isErrorChunk,
  parseBlockStatus,
  parseErrorChunk,
  parseOffsetData,
  parseOffsetHole,
  type ErrorChunk,
  type StatusDescriptor,
} from './nbd-protocol.js';

export abstract class ReplyAssembly<T> {
  /** The first error chunk the server sent for this request, if any. */
  error: ErrorChunk | undefined;

  add(type: number, payload: Buffer): void {
    if (isErrorChunk(type)) {
      // Keep the first: later ones are usually consequences of it.
      this.error ??= parseErrorChunk(type, payload);
      return;
    }
    if (type === NBD_REPLY_TYPE_NONE) {
      if (payload.length !== 0) throw new NbdDecodeError('NBD_REPLY_TYPE_NONE with a payload');
      return;
    }
    this.addContent(type, payload);
  }

  protected abstract addContent(type: number, payload: Buffer): void;

  /** After the final chunk of an error-free reply: the result, or NbdDecodeError if incomplete. */
  abstract result(): T;
}

/** Fills `target`, which stands for the export's bytes from `offset` on. */
export class ReadAssembly extends ReplyAssembly<Buffer> {
  private readonly pieces: Array<[start: number, end: number]> = [];

  constructor(
    private readonly offset: number,
    private readonly target: Buffer,
  ) {
    super();
  }

  protected addContent(type: number, payload: Buffer): void {
    if (type === NBD_REPLY_TYPE_OFFSET_DATA) {
      const { offset, data } = parseOffsetData(payload);
      data.copy(this.target, this.place(offset, data.length));
    } else if (type === NBD_REPLY_TYPE_OFFSET_HOLE) {
      const { offset, length } = parseOffsetHole(payload);
      const at = this.place(offset, length);
      // The target may be uninitialised memory: a hole must be written as zeros.
      this.target.fill(0, at, at + length);
    } else {
      throw new NbdDecodeError(`chunk type ${type} in the reply to a read`);
    }
  }

  /** Where a data chunk of `length` bytes at export `offset` goes (checked like any chunk): the reader fills it. */
  dataTarget(offset: number, length: number): Buffer {
    const at = this.place(offset, length);
    return this.target.subarray(at, at + length);
  }

  /** Checks that a chunk lies inside the request; returns its position in the target. */
  private place(offset: number, length: number): number {
    const at = offset - this.offset;
    if (at < 0 || at + length > this.target.length) {
      throw new NbdDecodeError(`read chunk [${offset}, +${length}) outside the request [${this.offset}, +${this.target.length})`);
    }
    this.pieces.push([at, at + length]);
    return at;
  }

  result(): Buffer {
    // Chunks may come in any order; sorted, they must cover the request with no gap or overlap.
    this.pieces.sort((a, b) => a[0] - b[0]);
    let next = 0;
    for (const [start, end] of this.pieces) {
      if (start !== next) throw new NbdDecodeError(`read reply ${start < next ? 'overlaps' : 'leaves a gap'} at offset ${this.offset + Math.min(start, next)}`);
      next = end;
    }
    if (next !== this.target.length) throw new NbdDecodeError(`read reply ends after ${next} of ${this.target.length} bytes`);
    return this.target;
  }
}

/** Keeps the descriptors of context `contextId`; chunks for the other negotiated contexts are checked and ignored. */
export class StatusAssembly extends ReplyAssembly<StatusDescriptor[]> {
  private descriptors: StatusDescriptor[] | undefined;

  constructor(
    private readonly contextId: number,
    private readonly negotiatedIds: ReadonlySet<number>,
  ) {
    super();
  }

  protected addContent(type: number, payload: Buffer): void {
    if (type !== NBD_REPLY_TYPE_BLOCK_STATUS) throw new NbdDecodeError(`chunk type ${type} in the reply to a block status request`);
    const { contextId, descriptors } = parseBlockStatus(payload);
    if (!this.negotiatedIds.has(contextId)) throw new NbdDecodeError(`block status for meta context id ${contextId}, which was not negotiated`);
    if (contextId !== this.contextId) return;
    if (this.descriptors) throw new NbdDecodeError(`two block status chunks for meta context id ${contextId}`);
    this.descriptors = descriptors;
  }

  result(): StatusDescriptor[] {
    if (!this.descriptors) throw new NbdDecodeError(`block status reply without extents for meta context id ${this.contextId}`);
    return this.descriptors;
  }
}
