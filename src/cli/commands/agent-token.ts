/** holdfast agent-token create [--expires 1h] [--name NAME]: a one-time join token for a new agent. */
import type { Command } from 'commander';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson } from '../output.js';

export function registerAgentToken(program: Command): void {
  const cmd = program.command('agent-token').description('join tokens for new agents');
  addServerOptions(
    cmd
      .command('create')
      .description('make a one-time join token (it carries the server CA fingerprint)')
      .option('--expires <duration>', 'how long the token stays valid', '1h')
      .option('--name <name>', 'the name the joining agent will get')
      .option('--json', 'machine-readable output'),
  ).action(async (opts: ServerOpts & { expires: string; name?: string; json?: boolean }) => {
    await withServer(opts, async (c) => {
      const t = await c.json<{ token: string; expires: string }>('POST', '/api/v1/agent-tokens', { expires: opts.expires, ...(opts.name ? { name: opts.name } : {}) });
      if (opts.json) printJson(t);
      else {
        info(t.token);
        process.stderr.write(`valid once, until ${t.expires}: holdfast agent --server URL --join TOKEN --state DIR\n`);
      }
    });
  });
}
