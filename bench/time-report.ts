/**
 * Reads the report GNU time writes with `-v -o FILE`: user and system CPU seconds, peak
 * resident set size and the command's exit status.
 */

/** The figures the benchmark takes from one `/usr/bin/time -v` report. */
export interface TimeReport {
  readonly userS: number;
  readonly sysS: number;
  /** "Maximum resident set size": the largest single process of the command, not a sum. */
  readonly maxRssKiB: number;
  readonly exitStatus: number;
  /** Set when the command was killed ("Command terminated by signal N"). */
  readonly signal?: number;
}

function field(text: string, label: string): number {
  const line = text.split('\n').find((l) => l.trim().startsWith(`${label}:`));
  if (line === undefined) throw new Error(`GNU time report lacks "${label}"`);
  const value = Number(line.slice(line.lastIndexOf(':') + 1).trim());
  if (!Number.isFinite(value)) throw new Error(`GNU time report has no number for "${label}": ${line.trim()}`);
  return value;
}

/** Parses the text of a `/usr/bin/time -v` report. */
export function parseTimeReport(text: string): TimeReport {
  const killed = /Command terminated by signal (\d+)/.exec(text);
  return {
    userS: field(text, 'User time (seconds)'),
    sysS: field(text, 'System time (seconds)'),
    maxRssKiB: field(text, 'Maximum resident set size (kbytes)'),
    exitStatus: field(text, 'Exit status'),
    ...(killed?.[1] !== undefined ? { signal: Number(killed[1]) } : {}),
  };
}
