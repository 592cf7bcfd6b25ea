/** holdfast agent --server URL --join TOKEN --state DIR: the agent on a production host. */
import type { Command } from 'commander';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the agent: join a protection server once with a token, then do the jobs it assigns')
    .option('--server <url>', 'protection server URL (needed to join)')
    .option('--join <token>', 'one-time join token from `holdfast agent-token create`')
    .option('--state <dir>', 'where the agent keeps its credentials and tracker state', '/var/lib/holdfast-agent')
    .option('--name <name>', 'agent name (default: the host name, or the name the token was made for)')
    .option('--jobs <n>', 'jobs run at once', '2')
    .option('--log-level <level>', 'info, warn, debug', 'info')
    .action(async (opts: { server?: string; join?: string; state: string; name?: string; jobs: string; logLevel: string }) => {
      const [{ default: pino }, { runAgent }] = await Promise.all([import('pino'), import('../../agent/remote/agent-daemon.js')]);
      const log = pino({ level: opts.logLevel, name: 'holdfast-agent' }, pino.destination(2));
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await runAgent({ stateDir: opts.state, server: opts.server, join: opts.join, name: opts.name, jobs: Math.max(1, Number.parseInt(opts.jobs, 10) || 2), signal: ac.signal, log });
    });
}
