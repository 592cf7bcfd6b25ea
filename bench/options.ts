/**
 * The benchmark's command-line options: work folder, scale, runs, tools, JSON output and
 * whether to keep repositories.
 */
import { parseArgs } from 'node:util';
import { TOOL_NAMES } from './tools/bench-tool.js';
import type { ToolName } from './tools/bench-tool.js';

/** Parsed options. */
export interface BenchOptions {
  readonly dir: string;
  readonly scale: number;
  readonly runs: number;
  readonly tools: readonly ToolName[];
  readonly json?: string;
  readonly keep: boolean;
  readonly help: boolean;
}

/** Usage text for `--help`. */
export const USAGE = `Usage: npm run bench -- [options]

Side-by-side backup benchmark: Holdfast, restic and borg on the same generated data set.

  --dir DIR       work folder for the data set, repositories and restores (default ./bench-data)
  --scale F       shrink the data set (1 = 2 GiB image + 20,000 small files; e.g. 0.05)
  --runs N        repeat the whole sequence N times and report medians (default 1)
  --tools LIST    comma-separated subset of ${TOOL_NAMES.join(',')} (default: all)
  --json FILE     also write every figure as JSON to FILE
  --keep          keep repositories and restores in the work folder
  -h, --help      show this text
`;

function isToolName(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name);
}

/** Parses `args` (without node and the script); throws with a message on bad input. */
export function parseBenchOptions(args: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      dir: { type: 'string', default: './bench-data' },
      scale: { type: 'string', default: '1' },
      runs: { type: 'string', default: '1' },
      tools: { type: 'string', default: TOOL_NAMES.join(',') },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 16)) throw new Error(`--scale must be a number in (0, 16], not ${values.scale}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number of at least 1, not ${values.runs}`);
  const names = values.tools.split(',').map((t) => t.trim()).filter((t) => t !== '');
  const unknown = names.filter((t) => !isToolName(t));
  if (unknown.length > 0 || names.length === 0) throw new Error(`--tools takes ${TOOL_NAMES.join(', ')}; got ${values.tools}`);
  const tools = TOOL_NAMES.filter((t) => names.includes(t));
  return {
    dir: values.dir,
    scale,
    runs,
    tools,
    ...(values.json !== undefined ? { json: values.json } : {}),
    keep: values.keep,
    help: values.help,
  };
}
