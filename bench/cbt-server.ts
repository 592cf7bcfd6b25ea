/**
 * A protection server and an agent daemon on this host for `npm run bench:cbt`, started as
 * test/e2e/server-harness.ts starts them: the product's real path, where the server holds the pool
 * open and the agent keeps its trackers, so a sync pays neither start-up nor an index load.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fetchPinnedCa, ServerClient } from '../src/agent/remote/server-client.js';
import { parseAdminToken } from '../src/core/tokens.js';

export interface Protection {
  admin: ServerClient;
  /** HOLDFAST_SERVER and HOLDFAST_TOKEN for `holdfast sync` */
  env: Record<string, string>;
  pool: string;
  /**
   * `holdfast sync SOURCE --wait --json` as a new process: the CLI round trip, the job's result,
   * and the CPU seconds the server and agent (with the tools they ran) used meanwhile.
   */
  cliSync: (source: string) => { cliMs: number; jobMs: number; readBytes: number; tracker: string; cpuSeconds: number };
  stop: () => Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds of a process and its waited-for children so far (/proc/PID/stat: utime stime cutime cstime). */
export function cpuOf(pid: number | 'self', childrenOnly = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // fields 14–17 of proc(5), counted from 3 after the command name
  const at = (i: number): number => f[i] ?? 0;
  return ((childrenOnly ? 0 : at(11) + at(12)) + at(13) + at(14)) / 100;
}

/** `nodeArgs` go to the server and agent processes (e.g. --cpu-prof). */
export async function startProtection(cli: string, dir: string, agentName: string, nodeArgs: string[] = []): Promise<Protection> {
  const serverDir = join(dir, 'server');
  rmSync(dir, { recursive: true, force: true });
  const server = spawn(process.execPath, [...nodeArgs, cli, 'server', '--data', serverDir, '--listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (d: Buffer) => (out += d.toString()));
  server.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let agent: ReturnType<typeof spawn> | undefined;
  let admin: ServerClient | undefined;
  const stop = async (): Promise<void> => {
    await admin?.close().catch(() => undefined);
    agent?.kill('SIGTERM');
    server.kill('SIGTERM');
    await new Promise((r) => (server.exitCode !== null ? r(undefined) : server.once('exit', r)));
  };
  try {
    let url: string | undefined;
    for (let i = 0; !url; i++) {
      if (server.exitCode !== null || i > 6000) throw new Error(`the server did not start: ${out}`);
      url = /listening on (https:\/\/\S+)/.exec(out)?.[1];
      await sleep(50);
    }
    const tokenText = readFileSync(join(serverDir, 'admin-token'), 'utf8').trim();
    const token = parseAdminToken(tokenText);
    admin = new ServerClient(url, { ca: await fetchPinnedCa(url, token.caFingerprint), bearer: token.secret }, 4);
    const { token: joinToken } = await admin.json<{ token: string }>('POST', '/api/v1/agent-tokens', { expires: '1h', name: agentName });
    agent = spawn(process.execPath, [...nodeArgs, cli, 'agent', '--server', url, '--join', joinToken, '--state', join(dir, 'agent'), '--name', agentName, '--log-level', 'warn'], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      const agents = await admin.json<Array<{ name: string; status: string }>>('GET', '/api/v1/agents');
      if (agents.some((a) => a.name === agentName && a.status === 'online')) break;
      if (i > 3000) throw new Error('the agent did not come online');
      await sleep(100);
    }
    const env = { HOLDFAST_SERVER: url, HOLDFAST_TOKEN: tokenText };
    const cliSync: Protection['cliSync'] = (source) => {
      const cpu0 = cpuOf(server.pid as number) + cpuOf(agent?.pid as number);
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [cli, 'sync', source, '--wait', '--json'], { encoding: 'utf8', env: { ...process.env, ...env } });
      const cliMs = performance.now() - t0;
      const cpuSeconds = cpuOf(server.pid as number) + cpuOf(agent?.pid as number) - cpu0;
      if (r.status !== 0) throw new Error(`holdfast sync ${source} exited ${r.status}: ${r.stderr}`);
      const j = JSON.parse(r.stdout) as { durationMs: number; readBytes: number; tracker: string };
      return { cliMs, jobMs: j.durationMs, readBytes: j.readBytes, tracker: j.tracker, cpuSeconds };
    };
    return { admin, env, pool: join(serverDir, 'pool'), cliSync, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
