/** Output helpers: JSON for machines, short lines for people, progress only on a terminal. */
import cliProgress from 'cli-progress';
import { formatBytes } from '../core/units.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function info(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function warn(line: string): void {
  process.stderr.write(`warning: ${line}\n`);
}

export interface Progress {
  update(done: number, note?: string): void;
  stop(): void;
}

/** A progress bar on stderr when it is a terminal and output is not JSON; silent otherwise. */
export function progressBar(label: string, total: number, enabled: boolean, unit: 'bytes' | 'count' = 'bytes'): Progress {
  const fmt = unit === 'bytes' ? formatBytes : (n: number): string => String(n);
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  if (total <= 0) {
    // Size unknown up front: a counting line instead of a bar.
    let last = 0;
    return {
      update: (done, note = '') => {
        const now = Date.now();
        if (now - last < 200) return;
        last = now;
        process.stderr.write(`\r${label} ${fmt(done)} ${note}\x1b[K`);
      },
      stop: () => process.stderr.write('\n'),
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% {doneText} / {totalText} {note}`,
      hideCursor: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(total, 1), 0, { doneText: fmt(0), totalText: fmt(total), note: '' });
  return {
    update: (done, note = '') => bar.update(Math.min(done, Math.max(total, 1)), { doneText: fmt(done), totalText: fmt(total), note }),
    stop: () => bar.stop(),
  };
}

/** A plain text table: a header row, then one row per item, columns padded to fit. */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): void {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  info(line(headers));
  for (const r of cells) info(line(r));
}
