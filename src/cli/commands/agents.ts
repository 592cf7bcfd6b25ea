/** holdfast agents [--json]; holdfast agents revoke NAME. */
import type { Command } from 'commander';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, table } from '../output.js';

interface AgentView {
  id: string;
  name: string;
  hostname: string;
  status: string;
  lastSeen: string | null;
  version: string | null;
  sources: string[];
}

export function registerAgents(program: Command): void {
  const cmd = program.command('agents').description('list agents and their status (online, offline, revoked)').option('--json', 'machine-readable output');
  addServerOptions(cmd).action(async (opts: ServerOpts & { json?: boolean }) => {
    await withServer(opts, async (c) => {
      const agents = await c.json<AgentView[]>('GET', '/api/v1/agents');
      if (opts.json) return printJson(agents);
      if (agents.length === 0) return info('no agents; make a join token with `holdfast agent-token create`');
      table(['NAME', 'STATUS', 'HOST', 'LAST SEEN', 'SOURCES'], agents.map((a) => [a.name, a.status, a.hostname, a.lastSeen, a.sources.join(',') || '-']));
    });
  });
  addServerOptions(cmd.command('revoke <name>').description('revoke an agent: its certificate is refused from now on').option('--json', 'machine-readable output')).action(
    async (name: string, opts: ServerOpts & { json?: boolean }) => {
      await withServer(opts, async (c) => {
        const r = await c.json<Record<string, unknown>>('POST', `/api/v1/agents/${encodeURIComponent(name)}/revoke`);
        if (opts.json) printJson(r);
        else info(`agent '${name}' revoked`);
      });
    },
  );
}
