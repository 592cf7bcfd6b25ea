/** A token bucket for the group's bandwidth limit: callers wait until their bytes fit the rate. */
export class Throttle {
  private available: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly bytesPerSecond: number,
    /** how much may go at once (a second's worth, at least one upload body) */
    private readonly burst = bytesPerSecond,
  ) {
    this.available = Math.min(burst, bytesPerSecond / 4);
  }

  /** Resolves when `bytes` may be sent; requests are served in order. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const next = this.queue.then(async () => {
      for (;;) {
        const now = Date.now();
        this.available = Math.min(this.burst, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
        this.last = now;
        if (this.available >= bytes || this.available >= this.burst) {
          this.available -= bytes;
          return;
        }
        if (signal?.aborted) return;
        const wait = ((Math.min(bytes, this.burst) - this.available) / this.bytesPerSecond) * 1000;
        await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(wait))));
      }
    });
    this.queue = next;
    return next;
  }
}
