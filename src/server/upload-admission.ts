/**
 * Admission of chunk uploads: at most `max` bodies are received or verified at once, all agents
 * together, so the server's memory is bounded however many agents sync. An upload beyond that
 * waits in line *before its body is read*: its connection is not read meanwhile, so TCP holds
 * the agent back (a few kernel buffers per waiting upload, not a body). Refusing it instead
 * (503) made the agent send the whole body again after a backoff during which slots stood idle.
 * Only when the line itself is long does a newcomer get BUSY (503) and retry later.
 */
export class UploadAdmission {
  private active = 0;
  private readonly line: Array<() => void> = [];

  constructor(
    readonly max: number,
    /** uploads allowed to wait; beyond this the caller answers BUSY */
    readonly maxWaiting: number,
  ) {}

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.line.length;
  }

  /**
   * Takes a slot now (true), queues `admitted` for the next free slot ('queued', with a function
   * that leaves the line if the caller goes away first), or refuses when the line is full.
   */
  enter(admitted: () => void): true | 'full' | { leave(): void } {
    if (this.active < this.max) {
      this.active++;
      return true;
    }
    if (this.line.length >= this.maxWaiting) return 'full';
    this.line.push(admitted);
    return {
      leave: () => {
        const i = this.line.indexOf(admitted);
        if (i >= 0) this.line.splice(i, 1);
      },
    };
  }

  /** A slot frees: it passes to the first in line, if any. */
  exit(): void {
    const next = this.line.shift();
    if (next) next();
    else this.active--;
  }
}
