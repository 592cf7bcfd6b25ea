/**
 * The page chunks of each source's latest committed point that the server read and checked at
 * its commit (every chunk they reference stored, with its length). The next sync's commit skips
 * those pages where they stand unchanged, so checking an image's manifest costs what changed,
 * not the image (docs/design.md, "Manifests"). Kept in memory only: after a restart, or once
 * evicted, a source's next commit reads its manifest whole, as before.
 */
import type { PageSpan } from '../core/manifest-io.js';

/** Page records kept over all sources (about 150 bytes each): an image of 2 GiB has 2,048 pages. */
const MAX_PAGES = 1 << 18;

export class CheckedPages {
  private readonly bySource = new Map<string, { point: string; pages: Map<string, PageSpan> }>();
  private total = 0;

  /** The pages checked for `point`, if it is the one this cache holds for `source`. */
  of(source: string, point: string | undefined): Map<string, PageSpan> | undefined {
    const c = this.bySource.get(source);
    return c && c.point === point ? c.pages : undefined;
  }

  set(source: string, point: string, pages: Map<string, PageSpan>): void {
    this.drop(source);
    if (pages.size === 0 || pages.size > MAX_PAGES) return;
    // Least recently committed sources go first.
    for (const [name] of this.bySource) {
      if (this.total + pages.size <= MAX_PAGES) break;
      this.drop(name);
    }
    this.bySource.set(source, { point, pages });
    this.total += pages.size;
  }

  drop(source: string): void {
    const c = this.bySource.get(source);
    if (!c) return;
    this.total -= c.pages.size;
    this.bySource.delete(source);
  }
}
