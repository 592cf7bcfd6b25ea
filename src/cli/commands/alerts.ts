/** holdfast alerts [--all] [--json]; holdfast alerts webhook URL|off. */
import type { Command } from 'commander';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, table } from '../output.js';

interface AlertView {
  id: number;
  kind: string;
  severity: string;
  object: string;
  message: string;
  state: string;
  raised: string;
  resolved: string | null;
}

export function registerAlerts(program: Command): void {
  const cmd = program.command('alerts').description('active alerts (failed jobs, missed recovery point objectives, agents offline)').option('--all', 'resolved alerts too').option('--json', 'machine-readable output');
  addServerOptions(cmd).action(async (opts: ServerOpts & { all?: boolean; json?: boolean }) => {
    await withServer(opts, async (c) => {
      const alerts = await c.json<AlertView[]>('GET', `/api/v1/alerts${opts.all ? '' : '?state=active'}`);
      if (opts.json) return printJson(alerts);
      if (alerts.length === 0) return info('no active alerts');
      table(['SEVERITY', 'STATE', 'KIND', 'OBJECT', 'RAISED', 'MESSAGE'], alerts.map((a) => [a.severity, a.state, a.kind, a.object, a.raised, a.message]));
    });
  });
  addServerOptions(cmd.command('webhook <url>').description("post every alert change as JSON to URL ('off' to stop)")).action(async (url: string, opts: ServerOpts) => {
    await withServer(opts, async (c) => {
      await c.json('PUT', '/api/v1/settings', { webhook: url });
      info(url === 'off' ? 'alert webhook removed' : `alerts will be posted to ${url}`);
    });
  });
}
