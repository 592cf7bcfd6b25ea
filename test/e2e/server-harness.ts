/**
 * End-to-end harness for the protection server and agents, each a separate process talking
 * TLS over loopback: start, kill -9 and restart them, run management commands against them,
 * and call the agent API with an agent's own credentials.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, holdfast, type CliResult } from './cli-harness.js';
import { ServerClient } from '../../src/agent/remote/server-client.js';
import { parseAdminToken } from '../../src/core/tokens.js';
import { freePort } from '../../src/agent/databases/free-port.js';
export { freePort };


export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 300): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

interface Proc {
  child: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}

function spawnCli(args: string[]): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out, exited };
}

export class TestServer {
  private proc: Proc | undefined;
  readonly url: string;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly extra: string[],
  ) {
    this.url = `https://127.0.0.1:${port}`;
  }

  static async start(dir: string, extra: string[] = []): Promise<TestServer> {
    const s = new TestServer(dir, await freePort(), extra);
    await s.restart();
    return s;
  }

  get token(): string {
    return readFileSync(join(this.dir, 'admin-token'), 'utf8').trim();
  }

  get log(): string {
    return this.proc?.out.join('') ?? '';
  }

  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  async restart(): Promise<void> {
    const p = spawnCli(['server', '--data', this.dir, '--listen', `127.0.0.1:${this.port}`, '--heartbeat', '1s', '--agent-timeout', '4s', '--retry-delay', '2s', '--log-level', process.env.HOLDFAST_TEST_LOG_LEVEL ?? 'warn', ...this.extra]);
    this.proc = p;
    await until('the server to listen', () => Promise.resolve(p.out.join('').includes('listening on') || p.child.exitCode !== null), 30_000, 50);
    if (p.child.exitCode !== null) throw new Error(`server exited: ${p.out.join('')}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.child.exitCode !== null) return;
    p.child.kill(signal);
    await p.exited;
  }

  cli(args: string[]): Promise<CliResult> {
    return holdfast(args, { env: { HOLDFAST_SERVER: this.url, HOLDFAST_TOKEN: this.token } });
  }

  async cliOk(args: string[]): Promise<string> {
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`holdfast ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  async json<T = Record<string, unknown>>(args: string[]): Promise<T> {
    return JSON.parse(await this.cliOk([...args, '--json'])) as T;
  }

  /** An administrator API client. */
  admin(): ServerClient {
    return new ServerClient(this.url, { ca: readFileSync(join(this.dir, 'ca.pem'), 'utf8'), bearer: parseAdminToken(this.token).secret });
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
  }
}

export class TestAgent {
  private proc: Proc | undefined;

  private constructor(
    readonly server: TestServer,
    readonly name: string,
    readonly stateDir: string,
  ) {}

  /** Joins with a fresh token and waits until the server lists the agent online. */
  static async start(server: TestServer, name: string, stateDir: string, joinToken?: string): Promise<TestAgent> {
    const token = joinToken ?? (await server.cliOk(['agent-token', 'create', '--expires', '5m'])).trim();
    const a = new TestAgent(server, name, stateDir);
    a.proc = spawnCli(['agent', '--server', server.url, '--join', token, '--state', stateDir, '--name', name, '--log-level', process.env.HOLDFAST_TEST_LOG_LEVEL ?? 'warn']);
    await a.waitOnline();
    return a;
  }

  get log(): string {
    return this.proc?.out.join('') ?? '';
  }

  get exited(): Promise<number | null> | undefined {
    return this.proc?.exited;
  }

  async waitOnline(): Promise<void> {
    await until(`agent ${this.name} online`, async () => {
      if (this.proc?.child.exitCode !== null && this.proc?.child.exitCode !== undefined) throw new Error(`agent ${this.name} exited: ${this.log}`);
      const agents = await this.server.json<Array<{ name: string; status: string }>>(['agents']);
      return agents.some((x) => x.name === this.name && x.status === 'online');
    });
  }

  /** Restarts from its state directory (no token: it already joined). */
  restart(): void {
    this.proc = spawnCli(['agent', '--state', this.stateDir, '--log-level', process.env.HOLDFAST_TEST_LOG_LEVEL ?? 'warn']);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.child.exitCode !== null) return;
    p.child.kill(signal);
    await p.exited;
  }

  /** An API client with this agent's own certificate. */
  client(): ServerClient {
    const f = (n: string): string => readFileSync(join(this.stateDir, n), 'utf8');
    return new ServerClient(this.server.url, { ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem') });
  }
}

export interface JobJson {
  id: string;
  type: string;
  source: string;
  state: string;
  origin: string;
  attempt: number;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  progress: Record<string, number> | null;
  retryOf: string | null;
}
