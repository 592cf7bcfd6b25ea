/**
 * Runs one external command under `/usr/bin/time -v` and returns its wall time (measured
 * here, around the process), CPU time, peak RSS, exit status and output. Output goes to
 * a log file; the first MiB of stdout is kept for commands that print JSON.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { parseTimeReport } from './time-report.js';
import type { TimeReport } from './time-report.js';

/** A command to run: argv, optional cwd and extra environment. */
export interface CommandSpec {
  readonly argv: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Exit statuses that count as success (default: only 0). */
  readonly okExitStatuses?: readonly number[];
}

/** What one timed command did. */
export interface CommandResult extends TimeReport {
  readonly argv: readonly string[];
  readonly wallS: number;
  readonly ok: boolean;
  readonly stdout: string;
  /** The last few KiB of stderr, for error messages. */
  readonly stderrTail: string;
}

const STDOUT_KEEP = 1024 * 1024;
const STDERR_KEEP = 4096;

/** Runs `spec` timed; `reportPath` is scratch space for GNU time, `logPath` collects output. */
export async function runTimed(spec: CommandSpec, reportPath: string, logPath: string, signal: AbortSignal): Promise<CommandResult> {
  const log = createWriteStream(logPath, { flags: 'a' });
  log.write(`\n$ ${spec.argv.join(' ')}${spec.cwd !== undefined ? `   (cwd ${spec.cwd})` : ''}\n`);
  let stdout = '';
  let stderrTail = '';
  const started = process.hrtime.bigint();
  const exit = await new Promise<number | null>((resolvePromise, reject) => {
    const child = spawn('/usr/bin/time', ['-v', '-o', reportPath, ...spec.argv], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      signal,
    });
    child.stdout.on('data', (chunk: Buffer) => {
      log.write(chunk);
      if (stdout.length < STDOUT_KEEP) stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      log.write(chunk);
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    child.on('error', reject);
    child.on('close', resolvePromise);
  });
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  await new Promise<void>((resolvePromise) => log.end(resolvePromise));
  const reportText = await readFile(reportPath, 'utf8').catch(() => '');
  await rm(reportPath, { force: true });
  if (!reportText.includes('Exit status')) {
    throw new Error(`/usr/bin/time wrote no report for: ${spec.argv.join(' ')} (exit ${String(exit)}): ${stderrTail.trim()}`);
  }
  const report = parseTimeReport(reportText);
  const ok = report.signal === undefined && (spec.okExitStatuses ?? [0]).includes(report.exitStatus);
  return { ...report, argv: spec.argv, wallS, ok, stdout, stderrTail };
}
