/** holdfast source add --group G --agent A --kind dir|image NAME PATH; source list. */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, table } from '../output.js';

interface SourceView {
  name: string;
  group: string;
  agent: string;
  kind: string;
  path: string;
  status: string;
  latestPoint: { id: string; time: string } | null;
}

export function registerSource(program: Command): void {
  const cmd = program.command('source').description('data sources: a directory or image on an agent, protected by a group');
  addServerOptions(
    cmd
      .command('add <name> <path>')
      .description('protect PATH on an agent as source NAME')
      .requiredOption('--group <group>', 'protection group')
      .requiredOption('--agent <agent>', 'agent that owns the data')
      .option('--kind <kind>', 'dir or image', 'dir')
      .option('--json', 'machine-readable output'),
  ).action(async (name: string, path: string, opts: ServerOpts & { group: string; agent: string; kind: string; json?: boolean }) => {
    if (opts.kind !== 'dir' && opts.kind !== 'image') throw new HoldfastError('BAD_ARGUMENT', `--kind must be dir or image, not '${opts.kind}'`);
    await withServer(opts, async (c) => {
      const s = await c.json<SourceView>('POST', '/api/v1/sources', { name, group: opts.group, agent: opts.agent, kind: opts.kind, path });
      if (opts.json) printJson(s);
      else info(`source '${s.name}' (${s.kind} ${s.path} on agent ${s.agent}) added to group '${s.group}'`);
    });
  });
  addServerOptions(cmd.command('list').description('list sources with their protection status').option('--json', 'machine-readable output')).action(async (opts: ServerOpts & { json?: boolean }) => {
    await withServer(opts, async (c) => {
      const sources = await c.json<SourceView[]>('GET', '/api/v1/sources');
      if (opts.json) return printJson(sources);
      table(['NAME', 'GROUP', 'AGENT', 'KIND', 'PATH', 'STATUS', 'LATEST POINT'], sources.map((s) => [s.name, s.group, s.agent, s.kind, s.path, s.status, s.latestPoint?.time]));
    });
  });
}
