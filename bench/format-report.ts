/**
 * The text report printed on stdout: what was measured, one table per step with
 * Holdfast's ratio to each peer, and the targets marked PASS or FAIL.
 */
import type { ChangeSummary } from './apply-change.js';
import type { TargetCheck } from './check-targets.js';
import type { DatasetSpec } from './dataset-spec.js';
import { STEPS } from './results.js';
import type { StepSummary, ToolSummary } from './summarize.js';
import type { ToolName } from './tools/bench-tool.js';

/** Everything the report shows. */
export interface ReportInput {
  readonly spec: DatasetSpec;
  readonly filesBytes: number;
  readonly runs: number;
  readonly summaries: readonly ToolSummary[];
  readonly targets: readonly TargetCheck[];
  readonly versions: ReadonlyMap<ToolName, string>;
  readonly setups: ReadonlyMap<ToolName, string>;
  readonly cachesDropped: boolean;
  readonly change?: ChangeSummary;
  readonly machine: string;
}

const MiB = 1024 * 1024;
const HEADERS = ['tool', 'wall s', 'CPU s', 'peak RSS MiB', 'repo MiB', 'hf/peer time', 'hf/peer RSS', 'hf/peer size'];

function table(rows: readonly (readonly string[])[]): string[] {
  // Short rows (a tool and a status) span the figure columns and do not widen them.
  const full = rows.filter((r) => r.length === HEADERS.length);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...[...(i === 0 ? rows : full)].map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(HEADERS), ...rows.map((r) => (r.length === 2 ? `${(r[0] ?? '').padEnd(widths[0] ?? 0)}  ${r[1] ?? ''}` : line(r)))];
}

function ratio(own: number | undefined, theirs: number | undefined): string {
  return own !== undefined && theirs !== undefined && theirs > 0 ? `${(own / theirs).toFixed(2)}x` : '';
}

function row(summary: ToolSummary, figures: StepSummary, holdfast: StepSummary | undefined): string[] {
  const isPeer = summary.tool !== 'holdfast';
  return [
    summary.tool,
    figures.wallS.toFixed(2),
    figures.cpuS.toFixed(2),
    figures.maxRssMiB.toFixed(1),
    figures.repoBytes !== undefined ? (figures.repoBytes / MiB).toFixed(1) : '-',
    isPeer ? ratio(holdfast?.wallS, figures.wallS) : '',
    isPeer ? ratio(holdfast?.maxRssMiB, figures.maxRssMiB) : '',
    isPeer ? ratio(holdfast?.repoBytes, figures.repoBytes) : '',
  ];
}

/** The report as text. */
export function formatReport(input: ReportInput): string {
  const { spec, change } = input;
  const out: string[] = [];
  out.push('Holdfast side-by-side backup benchmark');
  out.push(
    `data set (scale ${spec.scale}): disk.img ${(spec.imageBytes / MiB).toFixed(1)} MiB ` +
      `(runs of 64 KiB-4 MiB: random / text-like / zeros, about a third each) + ${spec.fileCount} small files ` +
      `of 1-64 KiB (${(input.filesBytes / MiB).toFixed(1)} MiB, random or text-like) in files/`,
  );
  if (change !== undefined) {
    out.push(
      `change before (c): ${change.imageRegions} x 64 KiB image regions rewritten in place ` +
        `(${((100 * change.imageBytes) / spec.imageBytes).toFixed(2)}% of the image), ${change.modifiedFiles} small files ` +
        `partly rewritten, ${change.addedFiles} small files added`,
    );
  }
  out.push(
    `runs: ${input.runs}${input.runs > 1 ? ' (medians)' : ''}; page cache dropped before every timed command: ` +
      (input.cachesDropped ? 'yes' : 'NO (not permitted here: times include warm caches)'),
  );
  out.push(`machine: ${input.machine}`);
  out.push('tools:');
  for (const summary of input.summaries) {
    const version = input.versions.get(summary.tool) ?? summary.tool;
    const status = summary.status === 'ok' ? '' : ` [${summary.status.toUpperCase()}: ${summary.note ?? ''}]`;
    out.push(`  ${version}${status}`);
    const setup = input.setups.get(summary.tool);
    if (setup !== undefined) out.push(`    ${setup}`);
  }
  out.push('wall = elapsed time; CPU = user + system; peak RSS = largest process (GNU time); repo = du -sb after the step');

  for (const step of STEPS) {
    out.push('', step.title);
    const holdfast = input.summaries.find((s) => s.tool === 'holdfast')?.steps[step.name];
    const rows = input.summaries.map((summary) => {
      const figures = summary.steps[step.name];
      if (figures !== undefined) return row(summary, figures, holdfast);
      return [summary.tool, summary.status === 'unavailable' ? 'unavailable' : 'failed (see above)'];
    });
    out.push(...table(rows));
  }

  out.push('', 'targets (holdfast against the faster peer):');
  for (const t of input.targets) out.push(`  ${t.verdict.padEnd(4)}  ${t.target}: ${t.detail}`);
  return `${out.join('\n')}\n`;
}
