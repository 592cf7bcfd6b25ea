/**
 * Bytes of file data a backup may hold at once between reading and storing. The walk keeps up to
 * 512 entries in flight so that unchanged files cost no waiting, but a tree of larger files would
 * then be read nearly whole into memory at once: every byte of it fresh memory, which a new agent
 * pays for page by page. Readers take their file's size (at most the whole budget) in arrival
 * order and give it back once the file's chunks are stored.
 */
export class ReadBudget {
  private free: number;
  private readonly waiting: Array<{ bytes: number; go: () => void }> = [];

  constructor(readonly capacity: number) {
    this.free = capacity;
  }

  /** Waits until `bytes` (capped at the capacity) are free, takes them, and returns their release. */
  async take(bytes: number): Promise<() => void> {
    const n = Math.min(Math.max(0, bytes), this.capacity);
    if (this.waiting.length > 0 || n > this.free) await new Promise<void>((go) => this.waiting.push({ bytes: n, go }));
    else this.free -= n;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.free += n;
      this.wake();
    };
  }

  /** Starts waiters in order while the first fits: a large one is not overtaken for ever by small ones. */
  private wake(): void {
    for (let w = this.waiting[0]; w && w.bytes <= this.free; w = this.waiting[0]) {
      this.waiting.shift();
      this.free -= w.bytes;
      w.go();
    }
  }
}
