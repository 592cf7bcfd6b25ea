/**
 * A browser-like HTTPS client for the console and portal API in tests: keeps the session cookie,
 * sends the CSRF token on state-changing requests (unless told not to), trusts the server's CA.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';

export interface WebReply<T = unknown> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
}

export class WebClient {
  private cookie = '';
  csrf = '';
  private readonly dispatcher: Agent;

  constructor(
    readonly url: string,
    serverDir: string,
  ) {
    this.dispatcher = new Agent({ connect: { ca: readFileSync(join(serverDir, 'ca.pem'), 'utf8') } });
  }

  async call<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, o: { csrf?: string | false; headers?: Record<string, string> } = {}): Promise<WebReply<T>> {
    const headers: Record<string, string> = { ...o.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && o.csrf !== false) headers['x-csrf-token'] = o.csrf ?? this.csrf;
    const res = await request(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), dispatcher: this.dispatcher });
    const setCookie = res.headers['set-cookie'];
    for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair] = c.split(';');
      if (pair?.startsWith('__Host-hf_session=')) this.cookie = pair.endsWith('=') ? '' : pair;
    }
    const raw = Buffer.from(await res.body.arrayBuffer());
    const type = String(res.headers['content-type'] ?? '');
    const parsed = type.includes('json') && raw.length > 0 ? (JSON.parse(raw.toString('utf8')) as T) : (raw.toString('utf8') as T);
    return { status: res.statusCode, body: parsed, headers: res.headers, raw };
  }

  async login(name: string, password: string): Promise<WebReply<{ csrf: string; user: { role: string } }>> {
    const r = await this.call<{ csrf: string; user: { role: string } }>('POST', '/api/v1/session', { name, password }, { csrf: false });
    if (r.status === 200) this.csrf = r.body.csrf;
    return r;
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}
