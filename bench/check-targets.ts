/**
 * The targets for Holdfast against its peers, checked on the median figures:
 * first backup and full restore at most half the faster peer's wall time; nothing-changed
 * and 1%-change backups no slower than the faster peer; pool no more than 5% larger than
 * restic's repository; peak RSS under 300 MiB; and every restore equal to the data set.
 */
import type { StepName } from './results.js';
import type { StepSummary, ToolSummary } from './summarize.js';

/** One target and how Holdfast fared. */
export interface TargetCheck {
  readonly target: string;
  readonly verdict: 'PASS' | 'FAIL' | 'n/a';
  readonly detail: string;
}

const RSS_LIMIT_MIB = 300;
const SIZE_TOLERANCE = 1.05;
const MiB = 1024 * 1024;

function fasterPeer(peers: readonly ToolSummary[], step: StepName): { tool: string; figures: StepSummary } | undefined {
  let best: { tool: string; figures: StepSummary } | undefined;
  for (const peer of peers) {
    const figures = peer.steps[step];
    if (figures !== undefined && (best === undefined || figures.wallS < best.figures.wallS)) best = { tool: peer.tool, figures };
  }
  return best;
}

/** Checks the targets; a target without the figures it needs is "n/a" with the reason. */
export function checkTargets(summaries: readonly ToolSummary[]): TargetCheck[] {
  const holdfast = summaries.find((s) => s.tool === 'holdfast');
  const peers = summaries.filter((s) => s.tool !== 'holdfast');
  const restic = summaries.find((s) => s.tool === 'restic');
  const missingHoldfast = holdfast === undefined ? 'holdfast not benchmarked' : `holdfast ${holdfast.status}`;

  const timeTarget = (step: StepName, factor: number, target: string): TargetCheck => {
    const own = holdfast?.steps[step];
    const peer = fasterPeer(peers, step);
    if (own === undefined) return { target, verdict: 'n/a', detail: missingHoldfast };
    if (peer === undefined) return { target, verdict: 'n/a', detail: 'no peer finished this step' };
    const limit = factor * peer.figures.wallS;
    return {
      target,
      verdict: own.wallS <= limit ? 'PASS' : 'FAIL',
      detail: `holdfast ${own.wallS.toFixed(2)} s, limit ${limit.toFixed(2)} s (${peer.tool} ${peer.figures.wallS.toFixed(2)} s)`,
    };
  };

  const sizeTarget = (): TargetCheck => {
    const target = 'pool size within 5% of restic (after every backup step)';
    if (holdfast?.steps.first === undefined) return { target, verdict: 'n/a', detail: missingHoldfast };
    if (restic?.steps.first?.repoBytes === undefined) return { target, verdict: 'n/a', detail: 'no restic figures' };
    const ratios = (['first', 'unchanged', 'changed'] as const).flatMap((step) => {
      const own = holdfast.steps[step]?.repoBytes;
      const theirs = restic.steps[step]?.repoBytes;
      return own !== undefined && theirs !== undefined ? [{ step, own, theirs, ratio: own / theirs }] : [];
    });
    if (ratios.length === 0) return { target, verdict: 'n/a', detail: 'no step with both sizes' };
    const worst = ratios.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    return {
      target,
      verdict: ratios.every((r) => r.ratio <= SIZE_TOLERANCE) ? 'PASS' : 'FAIL',
      detail: `worst after ${worst.step}: holdfast ${(worst.own / MiB).toFixed(1)} MiB / restic ${(worst.theirs / MiB).toFixed(1)} MiB = ${worst.ratio.toFixed(3)}`,
    };
  };

  const rssTarget = (): TargetCheck => {
    const target = `peak RSS under ${RSS_LIMIT_MIB} MiB (every step)`;
    const steps = Object.values(holdfast?.steps ?? {});
    if (steps.length === 0) return { target, verdict: 'n/a', detail: missingHoldfast };
    const peak = Math.max(...steps.map((s) => s.maxRssMiB));
    return { target, verdict: peak < RSS_LIMIT_MIB ? 'PASS' : 'FAIL', detail: `holdfast peak ${peak.toFixed(0)} MiB` };
  };

  const restoreTarget = (): TargetCheck => {
    const target = 'every restore equals the data set (all tools)';
    const checked = summaries.filter((s) => s.restoreMatches !== undefined);
    if (checked.length === 0) return { target, verdict: 'n/a', detail: 'no restore was checked' };
    const bad = checked.filter((s) => s.restoreMatches === false).map((s) => s.tool);
    return {
      target,
      verdict: bad.length === 0 ? 'PASS' : 'FAIL',
      detail: bad.length === 0 ? `checked ${checked.map((s) => s.tool).join(', ')}` : `MISMATCH: ${bad.join(', ')}`,
    };
  };

  return [
    timeTarget('first', 0.5, 'first backup at most half the faster peer'),
    timeTarget('unchanged', 1, 'nothing-changed backup no slower than the faster peer'),
    timeTarget('changed', 1, '1%-change backup no slower than the faster peer'),
    timeTarget('restore', 0.5, 'full restore at most half the faster peer'),
    sizeTarget(),
    rssTarget(),
    restoreTarget(),
  ];
}
