/**
 * The NBD wire format, as the client side of the fixed newstyle protocol uses it: constants and
 * pure encode/decode functions for option haggling (STRUCTURED_REPLY, SET_META_CONTEXT, GO),
 * the request header, and simple and structured replies. No I/O here; the client feeds these
 * functions the bytes it read. Numbers are big-endian on the wire; 64-bit offsets and sizes
 * become JavaScript numbers and are rejected above 2^53, far beyond any real export.
 * Spec: https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md
 */

// Handshake magics.
export const NBD_MAGIC = 0x4e42444d41474943n; // 'NBDMAGIC'
export const IHAVEOPT = 0x49484156454f5054n; // 'IHAVEOPT': newstyle, and the prefix of every option
export const OLDSTYLE_MAGIC = 0x00420281861253n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;

// Handshake flags (server) and client flags.
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// Options.
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_SET_META_CONTEXT = 10;

// Option reply types; errors have bit 31 set.
export const NBD_REP_ACK = 1;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const NBD_REP_FLAG_ERROR = 0x8000_0000;
const OPTION_REPLY_ERRORS: Record<number, string> = {
  [NBD_REP_FLAG_ERROR + 1]: 'NBD_REP_ERR_UNSUP',
  [NBD_REP_FLAG_ERROR + 2]: 'NBD_REP_ERR_POLICY',
  [NBD_REP_FLAG_ERROR + 3]: 'NBD_REP_ERR_INVALID',
  [NBD_REP_FLAG_ERROR + 4]: 'NBD_REP_ERR_PLATFORM',
  [NBD_REP_FLAG_ERROR + 5]: 'NBD_REP_ERR_TLS_REQD',
  [NBD_REP_FLAG_ERROR + 6]: 'NBD_REP_ERR_UNKNOWN',
  [NBD_REP_FLAG_ERROR + 7]: 'NBD_REP_ERR_SHUTDOWN',
  [NBD_REP_FLAG_ERROR + 8]: 'NBD_REP_ERR_BLOCK_SIZE_REQD',
  [NBD_REP_FLAG_ERROR + 9]: 'NBD_REP_ERR_TOO_BIG',
};
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1;

// Information types in NBD_REP_INFO.
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_BLOCK_SIZE = 3;

// Transmission flags (from NBD_INFO_EXPORT).
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

// Commands and command flags.
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_CMD_READ = 0;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_BLOCK_STATUS = 7;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const REQUEST_HEADER_LENGTH = 28;

// Replies.
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const SIMPLE_REPLY_HEADER_LENGTH = 16;
export const STRUCTURED_REPLY_HEADER_LENGTH = 20;
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = 0x8001;
export const NBD_REPLY_TYPE_ERROR_OFFSET = 0x8002;

// Block status flags: base:allocation, and qemu:dirty-bitmap:NAME (docs/interop/nbd.rst in qemu).
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
export const NBD_STATE_DIRTY = 1 << 0;

// Error values in replies (the spec fixes these numbers; they match Linux errno).
export const NBD_EINVAL = 22;
const NBD_ERRORS: Record<number, string> = {
  1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN',
};

/** A value the spec rules out; the client treats it as a protocol violation. */
export class NbdDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NbdDecodeError';
  }
}

export function nbdErrorName(code: number): string {
  return NBD_ERRORS[code] ?? `error ${code}`;
}

export function isOptionReplyError(type: number): boolean {
  return (type & NBD_REP_FLAG_ERROR) !== 0;
}

export function optionReplyName(type: number): string {
  if (type === NBD_REP_ACK) return 'NBD_REP_ACK';
  if (type === NBD_REP_INFO) return 'NBD_REP_INFO';
  if (type === NBD_REP_META_CONTEXT) return 'NBD_REP_META_CONTEXT';
  return OPTION_REPLY_ERRORS[type] ?? `reply type 0x${type.toString(16)}`;
}

export function isErrorChunk(type: number): boolean {
  return (type & 0x8000) !== 0;
}

export function readU64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new NbdDecodeError(`64-bit value ${v} is too large`);
  return Number(v);
}

function needLength(buf: Buffer, length: number, what: string): void {
  if (buf.length < length) throw new NbdDecodeError(`${what}: ${buf.length} bytes, expected at least ${length}`);
}

// ---- Handshake ----

export const SERVER_GREETING_LENGTH = 18;

/** Parses the server's first 18 bytes; returns its handshake flags. */
export function parseServerGreeting(buf: Buffer): { handshakeFlags: number } {
  needLength(buf, SERVER_GREETING_LENGTH, 'server greeting');
  if (buf.readBigUInt64BE(0) !== NBD_MAGIC) throw new NbdDecodeError('not an NBD server (no NBDMAGIC)');
  const second = buf.readBigUInt64BE(8);
  if (second === OLDSTYLE_MAGIC) throw new NbdDecodeError('server speaks oldstyle negotiation, which is not supported');
  if (second !== IHAVEOPT) throw new NbdDecodeError(`unknown handshake magic 0x${second.toString(16)}`);
  return { handshakeFlags: buf.readUInt16BE(16) };
}

export function encodeClientFlags(flags: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(flags >>> 0, 0);
  return buf;
}

/** One option request: IHAVEOPT, option, length, data. */
export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(16);
  head.writeBigUInt64BE(IHAVEOPT, 0);
  head.writeUInt32BE(option, 8);
  head.writeUInt32BE(data.length, 12);
  return Buffer.concat([head, data]);
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([len, bytes]);
}

/** Data of NBD_OPT_SET_META_CONTEXT: export name, then the queries (context names). */
export function encodeSetMetaContext(exportName: string, queries: readonly string[]): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length, 0);
  return Buffer.concat([lengthPrefixed(exportName), count, ...queries.map(lengthPrefixed)]);
}

/** Data of NBD_OPT_GO (and NBD_OPT_INFO): export name, then the information types wanted. */
export function encodeGo(exportName: string, infoRequests: readonly number[]): Buffer {
  const list = Buffer.alloc(2 + 2 * infoRequests.length);
  list.writeUInt16BE(infoRequests.length, 0);
  infoRequests.forEach((type, i) => list.writeUInt16BE(type, 2 + 2 * i));
  return Buffer.concat([lengthPrefixed(exportName), list]);
}

export const OPTION_REPLY_HEADER_LENGTH = 20;

export interface OptionReplyHeader {
  option: number;
  type: number;
  length: number;
}

export function parseOptionReplyHeader(buf: Buffer): OptionReplyHeader {
  needLength(buf, OPTION_REPLY_HEADER_LENGTH, 'option reply');
  const magic = buf.readBigUInt64BE(0);
  if (magic !== OPTION_REPLY_MAGIC) throw new NbdDecodeError(`bad option reply magic 0x${magic.toString(16)}`);
  return { option: buf.readUInt32BE(8), type: buf.readUInt32BE(12), length: buf.readUInt32BE(16) };
}

export function parseMetaContextReply(payload: Buffer): { id: number; name: string } {
  needLength(payload, 4, 'NBD_REP_META_CONTEXT');
  return { id: payload.readUInt32BE(0), name: payload.subarray(4).toString('utf8') };
}

export type InfoReply =
  | { type: 'export'; size: number; transmissionFlags: number }
  | { type: 'block-size'; minimum: number; preferred: number; maximum: number }
  | { type: 'other'; infoType: number };

export function parseInfoReply(payload: Buffer): InfoReply {
  needLength(payload, 2, 'NBD_REP_INFO');
  const infoType = payload.readUInt16BE(0);
  if (infoType === NBD_INFO_EXPORT) {
    if (payload.length !== 12) throw new NbdDecodeError(`NBD_INFO_EXPORT of ${payload.length} bytes, expected 12`);
    return { type: 'export', size: readU64(payload, 2), transmissionFlags: payload.readUInt16BE(10) };
  }
  if (infoType === NBD_INFO_BLOCK_SIZE) {
    if (payload.length !== 14) throw new NbdDecodeError(`NBD_INFO_BLOCK_SIZE of ${payload.length} bytes, expected 14`);
    return { type: 'block-size', minimum: payload.readUInt32BE(2), preferred: payload.readUInt32BE(6), maximum: payload.readUInt32BE(10) };
  }
  return { type: 'other', infoType };
}

/** What follows NBD_OPT_EXPORT_NAME (the fallback for servers without NBD_OPT_GO). */
export function parseExportNameReply(buf: Buffer): { size: number; transmissionFlags: number } {
  needLength(buf, 10, 'NBD_OPT_EXPORT_NAME reply');
  return { size: readU64(buf, 0), transmissionFlags: buf.readUInt16BE(8) };
}

// ---- Transmission ----

export interface Request {
  type: number;
  flags?: number;
  /** Opaque to the server, echoed in every reply; a bigint because all 64 bits may come back. */
  cookie: bigint;
  offset: number;
  length: number;
}

export function encodeRequest(req: Request): Buffer {
  const buf = Buffer.alloc(REQUEST_HEADER_LENGTH);
  buf.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  buf.writeUInt16BE(req.flags ?? 0, 4);
  buf.writeUInt16BE(req.type, 6);
  buf.writeBigUInt64BE(req.cookie, 8);
  buf.writeBigUInt64BE(BigInt(req.offset), 16);
  buf.writeUInt32BE(req.length, 24);
  return buf;
}

/** Which reply header a magic starts: the client reads 4 bytes, then the rest of that header. */
export function replyHeaderLength(magic: number): number {
  if (magic === NBD_SIMPLE_REPLY_MAGIC) return SIMPLE_REPLY_HEADER_LENGTH;
  if (magic === NBD_STRUCTURED_REPLY_MAGIC) return STRUCTURED_REPLY_HEADER_LENGTH;
  throw new NbdDecodeError(`bad reply magic 0x${magic.toString(16)}`);
}

export interface SimpleReply {
  kind: 'simple';
  error: number;
  cookie: bigint;
}

export interface ChunkHeader {
  kind: 'structured';
  flags: number;
  type: number;
  cookie: bigint;
  length: number;
}

/** Parses a whole reply header (simple: 16 bytes, structured chunk: 20 bytes). */
export function parseReplyHeader(buf: Buffer): SimpleReply | ChunkHeader {
  const magic = buf.readUInt32BE(0);
  needLength(buf, replyHeaderLength(magic), 'reply header');
  if (magic === NBD_SIMPLE_REPLY_MAGIC) return { kind: 'simple', error: buf.readUInt32BE(4), cookie: buf.readBigUInt64BE(8) };
  return { kind: 'structured', flags: buf.readUInt16BE(4), type: buf.readUInt16BE(6), cookie: buf.readBigUInt64BE(8), length: buf.readUInt32BE(16) };
}

export function parseOffsetData(payload: Buffer): { offset: number; data: Buffer } {
  if (payload.length < 9) throw new NbdDecodeError(`NBD_REPLY_TYPE_OFFSET_DATA of ${payload.length} bytes, expected at least 9`);
  return { offset: readU64(payload, 0), data: payload.subarray(8) };
}

export function parseOffsetHole(payload: Buffer): { offset: number; length: number } {
  if (payload.length !== 12) throw new NbdDecodeError(`NBD_REPLY_TYPE_OFFSET_HOLE of ${payload.length} bytes, expected 12`);
  const length = payload.readUInt32BE(8);
  if (length === 0) throw new NbdDecodeError('NBD_REPLY_TYPE_OFFSET_HOLE of zero length');
  return { offset: readU64(payload, 0), length };
}

export interface StatusDescriptor {
  length: number;
  flags: number;
}

export function parseBlockStatus(payload: Buffer): { contextId: number; descriptors: StatusDescriptor[] } {
  if (payload.length < 12 || (payload.length - 4) % 8 !== 0) {
    throw new NbdDecodeError(`NBD_REPLY_TYPE_BLOCK_STATUS of ${payload.length} bytes, expected 4 + a multiple of 8`);
  }
  const descriptors: StatusDescriptor[] = [];
  for (let at = 4; at < payload.length; at += 8) {
    const length = payload.readUInt32BE(at);
    if (length === 0) throw new NbdDecodeError('block status descriptor of zero length');
    descriptors.push({ length, flags: payload.readUInt32BE(at + 4) });
  }
  return { contextId: payload.readUInt32BE(0), descriptors };
}

export interface ErrorChunk {
  error: number;
  message: string;
  offset?: number;
}

/** Any chunk type with bit 15 set starts with error and message; ERROR_OFFSET adds an offset. */
export function parseErrorChunk(type: number, payload: Buffer): ErrorChunk {
  needLength(payload, 6, 'error chunk');
  const error = payload.readUInt32BE(0);
  const messageLength = payload.readUInt16BE(4);
  if (6 + messageLength > payload.length) throw new NbdDecodeError('error chunk message overruns its chunk');
  const message = payload.subarray(6, 6 + messageLength).toString('utf8');
  if (type !== NBD_REPLY_TYPE_ERROR_OFFSET) return { error, message };
  needLength(payload, 6 + messageLength + 8, 'NBD_REPLY_TYPE_ERROR_OFFSET');
  return { error, message, offset: readU64(payload, 6 + messageLength) };
}
