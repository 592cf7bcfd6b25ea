/**
 * The client side of the fixed newstyle handshake: greeting and client flags, then
 * NBD_OPT_STRUCTURED_REPLY (required: block status and sparse reads need it),
 * NBD_OPT_SET_META_CONTEXT for the contexts the caller wants (every one must be granted, so a
 * missing dirty bitmap fails loudly instead of looking clean), and NBD_OPT_GO asking for block
 * size constraints, which yields the export size and transmission flags. Servers without
 * NBD_OPT_GO get NBD_OPT_EXPORT_NAME, as the spec asks. One option at a time, as the spec requires.
 */
import { NbdHandshakeError, NbdProtocolError, type NbdEndpoint } from './nbd-errors.js';
import {
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NbdDecodeError,
  OPTION_REPLY_HEADER_LENGTH,
  SERVER_GREETING_LENGTH,
  encodeClientFlags,
  encodeGo,
  encodeOption,
  encodeSetMetaContext,
  isOptionReplyError,
  optionReplyName,
  parseExportNameReply,
  parseInfoReply,
  parseMetaContextReply,
  parseOptionReplyHeader,
  parseServerGreeting,
} from './nbd-protocol.js';

/** The byte stream during the handshake. */
export interface HandshakeWire {
  read(length: number): Promise<Buffer>;
  write(data: Buffer): void;
}

export interface BlockSizeConstraints {
  minimum: number;
  preferred: number;
  maximum: number;
}

export interface NegotiatedExport {
  size: number;
  transmissionFlags: number;
  blockSize: BlockSizeConstraints;
  /** Context name → the id the server gave it for this connection. */
  metaContextIds: Map<string, number>;
}

/** What the spec tells clients to assume when the server states no constraints. */
const DEFAULT_BLOCK_SIZE: BlockSizeConstraints = { minimum: 1, preferred: 4096, maximum: 32 * 1024 * 1024 };
/** Option replies are small (names, info); a huge length means the stream is garbage. */
const MAX_OPTION_REPLY = 1024 * 1024;

interface OptionReply {
  type: number;
  payload: Buffer;
}

export async function negotiate(wire: HandshakeWire, at: NbdEndpoint, metaContexts: readonly string[]): Promise<NegotiatedExport> {
  try {
    const noZeroes = await greet(wire, at);
    await enableStructuredReplies(wire, at);
    const metaContextIds = metaContexts.length > 0 ? await setMetaContexts(wire, at, metaContexts) : new Map<string, number>();
    const exported = await go(wire, at, noZeroes);
    return { ...exported, metaContextIds };
  } catch (err) {
    if (err instanceof NbdDecodeError) throw new NbdProtocolError(at, err.message, { cause: err });
    throw err;
  }
}

/** Reads the greeting, sends client flags; returns whether the 124 trailing zeroes are off. */
async function greet(wire: HandshakeWire, at: NbdEndpoint): Promise<boolean> {
  const { handshakeFlags } = parseServerGreeting(await wire.read(SERVER_GREETING_LENGTH));
  if (!(handshakeFlags & NBD_FLAG_FIXED_NEWSTYLE)) throw new NbdHandshakeError(at, 'server does not support fixed newstyle negotiation');
  // Clients must not set NO_ZEROES unless the server offered it.
  const noZeroes = (handshakeFlags & NBD_FLAG_NO_ZEROES) !== 0;
  wire.write(encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0)));
  return noZeroes;
}

async function readOptionReply(wire: HandshakeWire, at: NbdEndpoint, option: number): Promise<OptionReply> {
  const header = parseOptionReplyHeader(await wire.read(OPTION_REPLY_HEADER_LENGTH));
  if (header.option !== option) throw new NbdProtocolError(at, `reply to option ${header.option} while waiting for option ${option}`);
  if (header.length > MAX_OPTION_REPLY) throw new NbdProtocolError(at, `option reply of ${header.length} bytes`);
  const payload = header.length > 0 ? await wire.read(header.length) : Buffer.alloc(0);
  return { type: header.type, payload };
}

function refused(at: NbdEndpoint, what: string, reply: OptionReply): NbdHandshakeError {
  const name = optionReplyName(reply.type);
  const message = reply.payload.toString('utf8');
  return new NbdHandshakeError(at, `server refused ${what}: ${name}${message ? ` (${message})` : ''}`, name);
}

function unexpected(at: NbdEndpoint, what: string, reply: OptionReply): NbdProtocolError {
  return new NbdProtocolError(at, `${optionReplyName(reply.type)} in reply to ${what}`);
}

async function enableStructuredReplies(wire: HandshakeWire, at: NbdEndpoint): Promise<void> {
  wire.write(encodeOption(NBD_OPT_STRUCTURED_REPLY));
  const reply = await readOptionReply(wire, at, NBD_OPT_STRUCTURED_REPLY);
  if (isOptionReplyError(reply.type)) throw refused(at, 'structured replies (NBD_OPT_STRUCTURED_REPLY), which this client requires', reply);
  if (reply.type !== NBD_REP_ACK) throw unexpected(at, 'NBD_OPT_STRUCTURED_REPLY', reply);
}

async function setMetaContexts(wire: HandshakeWire, at: NbdEndpoint, wanted: readonly string[]): Promise<Map<string, number>> {
  wire.write(encodeOption(NBD_OPT_SET_META_CONTEXT, encodeSetMetaContext(at.exportName, wanted)));
  const ids = new Map<string, number>();
  for (;;) {
    const reply = await readOptionReply(wire, at, NBD_OPT_SET_META_CONTEXT);
    if (reply.type === NBD_REP_ACK) break;
    if (isOptionReplyError(reply.type)) throw refused(at, `meta contexts ${wanted.join(', ')}`, reply);
    if (reply.type !== NBD_REP_META_CONTEXT) throw unexpected(at, 'NBD_OPT_SET_META_CONTEXT', reply);
    const { id, name } = parseMetaContextReply(reply.payload);
    ids.set(name, id);
  }
  const missing = wanted.filter((name) => !ids.has(name));
  if (missing.length > 0) throw new NbdHandshakeError(at, `server did not grant meta context ${missing.map(describeContext).join(', ')}`);
  return ids;
}

/** Names a missing context with the likely reason, since qemu simply leaves it out. */
function describeContext(name: string): string {
  const bitmap = /^qemu:dirty-bitmap:(.*)$/.exec(name)?.[1];
  if (bitmap !== undefined) return `'${name}' (does the image have bitmap '${bitmap}', and is it exported, e.g. qemu-nbd -B ${bitmap}?)`;
  return `'${name}'`;
}

async function go(wire: HandshakeWire, at: NbdEndpoint, noZeroes: boolean): Promise<Omit<NegotiatedExport, 'metaContextIds'>> {
  wire.write(encodeOption(NBD_OPT_GO, encodeGo(at.exportName, [NBD_INFO_BLOCK_SIZE])));
  let exported: { size: number; transmissionFlags: number } | undefined;
  let blockSize = DEFAULT_BLOCK_SIZE;
  for (;;) {
    const reply = await readOptionReply(wire, at, NBD_OPT_GO);
    if (reply.type === NBD_REP_ACK) break;
    if (reply.type === NBD_REP_ERR_UNSUP) return exportNameFallback(wire, at, noZeroes);
    if (isOptionReplyError(reply.type)) throw refused(at, 'the export (NBD_OPT_GO)', reply);
    if (reply.type !== NBD_REP_INFO) throw unexpected(at, 'NBD_OPT_GO', reply);
    const info = parseInfoReply(reply.payload);
    if (info.type === 'export') exported = info;
    else if (info.type === 'block-size') blockSize = checkBlockSize(at, info);
  }
  if (!exported) throw new NbdProtocolError(at, 'NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
  return { size: exported.size, transmissionFlags: exported.transmissionFlags, blockSize };
}

function checkBlockSize(at: NbdEndpoint, b: BlockSizeConstraints): BlockSizeConstraints {
  const powerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
  if (!powerOfTwo(b.minimum) || b.minimum > 65536 || b.maximum < b.minimum) {
    throw new NbdProtocolError(at, `invalid block size constraints ${b.minimum}/${b.preferred}/${b.maximum}`);
  }
  return { minimum: b.minimum, preferred: b.preferred, maximum: b.maximum };
}

/** The pre-NBD_OPT_GO way in: no error replies, the server just hangs up on a bad name. */
async function exportNameFallback(wire: HandshakeWire, at: NbdEndpoint, noZeroes: boolean): Promise<Omit<NegotiatedExport, 'metaContextIds'>> {
  wire.write(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from(at.exportName, 'utf8')));
  const reply = parseExportNameReply(await wire.read(10));
  if (!noZeroes) await wire.read(124);
  return { ...reply, blockSize: DEFAULT_BLOCK_SIZE };
}
