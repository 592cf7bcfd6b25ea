/**
 * Progress lines for the benchmark, on stderr so stdout carries only the report.
 */
const started = Date.now();

/** Writes one progress line, prefixed with the seconds since the benchmark started. */
export function progress(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(7);
  process.stderr.write(`[bench ${seconds}s] ${message}\n`);
}
