/**
 * The administrator's connection to a protection server for management commands: the URL from
 * --server (or HOLDFAST_SERVER, or the embedded default), the token from HOLDFAST_TOKEN or a
 * token file (--token-file, or ./holdfast-data/admin-token). The token carries the CA
 * fingerprint, so the server is verified before the token is sent.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { HoldfastError, errnoCode } from '../core/errors.js';
import { parseAdminToken } from '../core/tokens.js';
// Loaded on first use: the HTTP client (undici) costs local pool commands ~0.3 s of start-up.
import type { ServerClient } from '../agent/remote/server-client.js';

export const DEFAULT_SERVER = 'https://127.0.0.1:7070';
export const DEFAULT_DATA = './holdfast-data';

export interface ServerOpts {
  server?: string;
  tokenFile?: string;
}

export function addServerOptions(cmd: Command, required = false): Command {
  const desc = `protection server URL (default: $HOLDFAST_SERVER or ${DEFAULT_SERVER})`;
  if (required) cmd.requiredOption('--server <url>', desc);
  else cmd.option('--server <url>', desc);
  return cmd.option('--token-file <file>', `administrator token file (default: $HOLDFAST_TOKEN, else ${DEFAULT_DATA}/admin-token)`);
}

async function tokenText(o: ServerOpts): Promise<string> {
  if (!o.tokenFile && process.env.HOLDFAST_TOKEN) return process.env.HOLDFAST_TOKEN;
  const file = o.tokenFile ?? `${DEFAULT_DATA}/admin-token`;
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new HoldfastError('UNAUTHORIZED', `no administrator token: set HOLDFAST_TOKEN or pass --token-file (${file} does not exist)`);
    }
    throw new HoldfastError('UNAUTHORIZED', `cannot read the token file ${file}: ${(err as Error).message}`);
  }
}

export async function withServer<T>(o: ServerOpts, fn: (client: ServerClient) => Promise<T>): Promise<T> {
  const url = o.server ?? process.env.HOLDFAST_SERVER ?? DEFAULT_SERVER;
  try {
    new URL(url);
  } catch {
    throw new HoldfastError('BAD_ARGUMENT', `--server '${url}' is not a URL (for example ${DEFAULT_SERVER})`);
  }
  const token = parseAdminToken(await tokenText(o));
  const { fetchPinnedCa, ServerClient } = await import('../agent/remote/server-client.js');
  const ca = await fetchPinnedCa(url, token.caFingerprint);
  const client = new ServerClient(url, { ca, bearer: token.secret }, 2);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
