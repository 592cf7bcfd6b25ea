/**
 * A small QMP (QEMU Machine Protocol) client: JSON objects over a Unix socket. The qcow2 tracker
 * uses it to rotate dirty bitmaps and set up image fleecing inside a running QEMU (a VM or
 * qemu-storage-daemon). Commands carry an `id`, so replies are matched to them; asynchronous
 * events in between are kept for `waitEvent`.
 */
import { createConnection, type Socket } from 'node:net';
import { HoldfastError, errnoCode } from '../../core/errors.js';

type Json = Record<string, unknown>;

/** QEMU answered a command with an error (class and description as QEMU gives them). */
export class QmpCommandError extends HoldfastError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
    socketPath: string,
  ) {
    super('SOURCE_UNREADABLE', `QMP ${command} on ${socketPath} failed: ${errorClass}: ${desc}`, { socket: socketPath, command });
    this.name = 'QmpCommandError';
  }
}

export interface QmpEvent {
  event: string;
  data?: Json;
}

export class QmpClient {
  private buffered = '';
  private nextId = 1;
  private readonly waiting = new Map<string, { command: string; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly events: QmpEvent[] = [];
  private readonly eventWaiters: Array<() => void> = [];
  private closedWith: Error | undefined;
  private greeted!: () => void;
  private readonly greeting = new Promise<void>((resolve) => (this.greeted = resolve));

  private constructor(
    private readonly socketPath: string,
    private readonly socket: Socket,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.onData(text));
    socket.on('error', (err) => this.onClose(err));
    socket.on('close', () => this.onClose(undefined));
  }

  /** Connects, waits for the greeting and leaves capabilities negotiation mode. */
  static async connect(socketPath: string, signal?: AbortSignal): Promise<QmpClient> {
    const socket = createConnection({ path: socketPath });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', (err) => {
        reject(new HoldfastError('SOURCE_UNREADABLE', `cannot connect to QMP socket ${socketPath}: ${errnoCode(err) ?? err.message}`, { socket: socketPath }, { cause: err }));
      });
    });
    const client = new QmpClient(socketPath, socket);
    const timer = setTimeout(() => client.onClose(new Error('no QMP greeting within 10 s')), 10_000);
    try {
      const closed = client.closed();
      closed.catch(() => undefined); // only the race below observes it
      await Promise.race([client.greeting, closed]);
      if (signal?.aborted) throw new HoldfastError('ABORTED', 'QMP connect aborted');
      await client.execute('qmp_capabilities');
    } catch (err) {
      client.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  /** Runs one command; resolves with its `return` value, rejects with QmpCommandError. */
  execute<T = unknown>(command: string, args?: Json): Promise<T> {
    if (this.closedWith) return Promise.reject(this.lost(command));
    const id = `hf-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`);
    });
  }

  /** Waits for an event with this name (matching `match` if given), seen since connect and not yet taken. */
  async waitEvent(name: string, match: (data: Json) => boolean = () => true, timeoutMs = 30_000): Promise<QmpEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => e.event === name && match(e.data ?? {}));
      if (i >= 0) return this.events.splice(i, 1)[0] as QmpEvent;
      if (this.closedWith) throw this.lost(`wait for ${name}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new HoldfastError('SOURCE_UNREADABLE', `QMP event ${name} did not come within ${timeoutMs} ms on ${this.socketPath}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
    this.onClose(new Error('closed by the agent'));
  }

  private closed(): Promise<never> {
    return new Promise((_, reject) => {
      const check = (): void => {
        if (this.closedWith) reject(this.lost('connect'));
        else this.eventWaiters.push(check);
      };
      check();
    });
  }

  private lost(what: string): HoldfastError {
    return new HoldfastError('SOURCE_UNREADABLE', `QMP ${what} on ${this.socketPath}: connection lost (${this.closedWith?.message ?? 'closed'})`, { socket: this.socketPath });
  }

  private onData(text: string): void {
    this.buffered += text;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line.length === 0) continue;
      let msg: Json;
      try {
        msg = JSON.parse(line) as Json;
      } catch {
        this.onClose(new Error(`not JSON: ${line.slice(0, 80)}`));
        return;
      }
      this.onMessage(msg);
    }
  }

  private onMessage(msg: Json): void {
    if ('QMP' in msg) return this.greeted();
    if (typeof msg.event === 'string') {
      this.events.push({ event: msg.event, data: msg.data as Json | undefined });
      if (this.events.length > 1000) this.events.shift(); // nobody waits for old events
      for (const w of this.eventWaiters.splice(0)) w();
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const w = id === undefined ? undefined : this.waiting.get(id);
    if (!w || id === undefined) return;
    this.waiting.delete(id);
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      w.reject(new QmpCommandError(w.command, e.class ?? 'GenericError', e.desc ?? 'unknown error', this.socketPath));
    } else w.resolve(msg.return);
  }

  private onClose(err: Error | undefined): void {
    if (this.closedWith) return;
    this.closedWith = err ?? new Error('closed by QEMU');
    for (const [, w] of this.waiting) w.reject(this.lost(w.command));
    this.waiting.clear();
    for (const w of this.eventWaiters.splice(0)) w();
  }
}
