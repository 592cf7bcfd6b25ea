/**
 * Errors of the NBD client. Each names the socket and the export, so a tracker's report says
 * which image could not be read; the subclass says what went wrong: the connection (could not
 * connect, or dropped), the handshake (an option refused), the server's answer to one request
 * (with the NBD error code), a range outside the export, or a server breaking the protocol.
 * Cancellation is not here: an aborted operation rejects with the core ABORTED error.
 */
import { HoldfastError } from '../../core/errors.js';

/** Where an error happened: the Unix socket and the export name on it. */
export interface NbdEndpoint {
  socketPath: string;
  exportName: string;
}

export function describeEndpoint(at: NbdEndpoint): string {
  return `NBD export '${at.exportName}' on socket ${at.socketPath}`;
}

/** An expected failure to read a source (catalogue code SOURCE_UNREADABLE), not a bug. */
export class NbdError extends HoldfastError {
  readonly socketPath: string;
  readonly exportName: string;

  constructor(at: NbdEndpoint, message: string, options?: { cause?: unknown }) {
    super('SOURCE_UNREADABLE', `${describeEndpoint(at)}: ${message}`, { socket: at.socketPath, export: at.exportName }, options);
    this.name = 'NbdError';
    this.socketPath = at.socketPath;
    this.exportName = at.exportName;
  }
}

/** Connecting failed, or the connection closed while requests were in flight or after. */
export class NbdConnectionError extends NbdError {
  constructor(at: NbdEndpoint, message: string, options?: { cause?: unknown }) {
    super(at, message, options);
    this.name = 'NbdConnectionError';
  }
}

/** The server refused an option during the handshake (unknown export, missing context...). */
export class NbdHandshakeError extends NbdError {
  /** The NBD_REP_ERR_* name, when the server sent one. */
  readonly reply: string | undefined;

  constructor(at: NbdEndpoint, message: string, reply?: string) {
    super(at, message);
    this.name = 'NbdHandshakeError';
    this.reply = reply;
  }
}

/** The server answered one request with an error; the connection stays usable. */
export class NbdRequestError extends NbdError {
  /** The NBD error value (22 = EINVAL...) and its name. */
  readonly nbdError: number;
  readonly nbdErrorName: string;
  readonly serverMessage: string;

  constructor(at: NbdEndpoint, what: string, nbdError: number, nbdErrorName: string, serverMessage: string) {
    super(at, `${what} failed: ${nbdErrorName} (${nbdError})${serverMessage ? `: ${serverMessage}` : ''}`);
    this.name = 'NbdRequestError';
    this.nbdError = nbdError;
    this.nbdErrorName = nbdErrorName;
    this.serverMessage = serverMessage;
  }
}

/** The caller asked for bytes outside the export; nothing was sent. */
export class NbdRangeError extends NbdError {
  constructor(at: NbdEndpoint, message: string) {
    super(at, message);
    this.name = 'NbdRangeError';
  }
}

/** The server sent something the protocol forbids; the client drops the connection. */
export class NbdProtocolError extends NbdError {
  constructor(at: NbdEndpoint, message: string, options?: { cause?: unknown }) {
    super(at, `protocol violation: ${message}`, options);
    this.name = 'NbdProtocolError';
  }
}
