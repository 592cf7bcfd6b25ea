/**
 * holdfast user add NAME [--role admin|user] [--uid N] [--groups 100,101] [--password-file F];
 * user list; user passwd NAME --password-file F; user delete NAME. Accounts for the web console
 * (administrators) and the self-service portal (users, who map to a uid and groups on the hosts).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, table } from '../output.js';

interface UserView {
  name: string;
  role: string;
  uid: number;
  gids: number[];
  created: string;
  password?: string;
}

function readPassword(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new HoldfastError('BAD_ARGUMENT', `cannot read password file ${file}: ${(err as Error).message}`);
  }
  return text.replace(/\r?\n$/, '');
}

function parseIds(text: string, what: string): number[] {
  return text
    .split(',')
    .filter((x) => x.trim() !== '')
    .map((x) => {
      const n = Number(x.trim());
      if (!Number.isSafeInteger(n) || n < 0 || n > 0xfffffffe) throw new HoldfastError('BAD_ARGUMENT', `${what} '${x}' is not a numeric id`);
      return n;
    });
}

export function registerUser(program: Command): void {
  const cmd = program.command('user').description('accounts of the web console (admin) and the self-service restore portal (user)');
  addServerOptions(
    cmd
      .command('add <name>')
      .description('create an account; without --password-file a random password is printed once')
      .option('--role <role>', 'admin (console and API) or user (portal)', 'user')
      .option('--uid <n>', "the user's uid on the protected hosts (required for role user)")
      .option('--groups <gids>', 'the gids of every group the user is in, primary group included (comma-separated)', '')
      .option('--password-file <file>', 'read the password from this file (first line)')
      .option('--json', 'machine-readable output'),
  ).action(async (name: string, opts: ServerOpts & { role: string; uid?: string; groups: string; passwordFile?: string; json?: boolean }) => {
    if (opts.role !== 'admin' && opts.role !== 'user') throw new HoldfastError('BAD_ARGUMENT', `--role takes admin or user, not '${opts.role}'`);
    const body = {
      name,
      role: opts.role,
      ...(opts.uid !== undefined ? { uid: parseIds(opts.uid, 'uid')[0] } : {}),
      gids: parseIds(opts.groups, 'gid'),
      ...(opts.passwordFile ? { password: readPassword(opts.passwordFile) } : {}),
    };
    await withServer(opts, async (c) => {
      const u = await c.json<UserView>('POST', '/api/v1/users', body);
      if (opts.json) return printJson(u);
      info(`user '${u.name}' (${u.role}${u.role === 'user' ? `, uid ${u.uid}, groups ${u.gids.join(',') || '-'}` : ''}) created`);
      if (u.password) info(`password (shown once): ${u.password}`);
    });
  });
  addServerOptions(cmd.command('list').description('list accounts').option('--json', 'machine-readable output')).action(async (opts: ServerOpts & { json?: boolean }) => {
    await withServer(opts, async (c) => {
      const users = await c.json<UserView[]>('GET', '/api/v1/users');
      if (opts.json) return printJson(users);
      table(['NAME', 'ROLE', 'UID', 'GROUPS', 'CREATED'], users.map((u) => [u.name, u.role, u.role === 'user' ? u.uid : '-', u.gids.join(',') || '-', u.created]));
    });
  });
  addServerOptions(cmd.command('passwd <name>').description("set an account's password (ends its sessions)").requiredOption('--password-file <file>', 'read the new password from this file')).action(
    async (name: string, opts: ServerOpts & { passwordFile: string }) => {
      await withServer(opts, async (c) => {
        await c.json('PUT', `/api/v1/users/${encodeURIComponent(name)}/password`, { password: readPassword(opts.passwordFile) });
        info(`password of '${name}' changed`);
      });
    },
  );
  addServerOptions(cmd.command('delete <name>').description('delete an account (ends its sessions)')).action(async (name: string, opts: ServerOpts) => {
    await withServer(opts, async (c) => {
      await c.json('DELETE', `/api/v1/users/${encodeURIComponent(name)}`);
      info(`user '${name}' deleted`);
    });
  });
}
