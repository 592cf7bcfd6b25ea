/**
 * Session authentication for the console and the portal: the session cookie (HttpOnly, Secure,
 * SameSite=Strict, __Host- prefixed), a CSRF token per session that every state-changing request
 * must echo in `X-CSRF-Token`, and an origin check (Origin / Sec-Fetch-Site) on top.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CookieSerializeOptions } from '@fastify/cookie';
import { HoldfastError } from '../core/errors.js';
import type { ProtectionServer } from './protection-server.js';
import { SESSION_MAX_MS, type Role, type WebSession } from './web-accounts.js';

/** What the session check needs of a request (any route's request, whatever its schema types). */
export interface AnyRequest {
  method: string;
  headers: IncomingHttpHeaders;
  cookies?: Record<string, string | undefined>;
  webSession?: WebSession | null;
}

/** What setting the cookie needs of a reply. */
export interface AnyReply {
  setCookie(name: string, value: string, o: CookieSerializeOptions): unknown;
  clearCookie(name: string, o: CookieSerializeOptions): unknown;
}

export const SESSION_COOKIE = '__Host-hf_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'fastify' {
  interface FastifyRequest {
    webSession?: WebSession | null;
  }
}

const same = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function cookieOf(req: AnyRequest): string | undefined {
  const v = req.cookies?.[SESSION_COOKIE];
  return v && /^[A-Za-z0-9_-]{20,100}$/.test(v) ? v : undefined;
}

/** Refuses a request another site made the browser send. */
export function checkOrigin(req: AnyRequest): void {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') throw new HoldfastError('FORBIDDEN', 'cross-site request refused');
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.headers.host) throw new HoldfastError('FORBIDDEN', `request from origin ${origin} refused`);
  }
}

/** The request's session, if its cookie names a live one (looked up once per request). */
export function sessionOf(server: ProtectionServer, req: AnyRequest): WebSession | undefined {
  if (req.webSession === undefined) {
    const id = cookieOf(req);
    req.webSession = (id && server.web.accounts.session(id)) || null;
  }
  return req.webSession ?? undefined;
}

/**
 * The signed-in account, of the role when given; state-changing requests must also carry the
 * session's CSRF token and come from this origin.
 */
export function requireSession(server: ProtectionServer, req: AnyRequest, role?: Role): WebSession {
  const s = sessionOf(server, req);
  if (!s) throw new HoldfastError('UNAUTHORIZED', 'sign in first (no live session)');
  if (role && s.user.role !== role) throw new HoldfastError('FORBIDDEN', `this needs the ${role} role; '${s.user.name}' is a ${s.user.role}`);
  if (!SAFE_METHODS.has(req.method)) {
    checkOrigin(req);
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string' || !same(token, s.csrf)) throw new HoldfastError('FORBIDDEN', 'the CSRF token is missing or wrong (X-CSRF-Token)');
  }
  return s;
}

/** True when the request is an administrator's session (checked as requireSession does); false when it has no session cookie. */
export function adminSession(server: ProtectionServer, req: AnyRequest): boolean {
  if (!cookieOf(req)) return false;
  requireSession(server, req, 'admin');
  return true;
}

export function setSessionCookie(reply: AnyReply, id: string): void {
  void reply.setCookie(SESSION_COOKIE, id, { path: '/', httpOnly: true, secure: true, sameSite: 'strict', maxAge: Math.floor(SESSION_MAX_MS / 1000) });
}

export function clearSessionCookie(reply: AnyReply): void {
  void reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });
}

export function sessionCookieValue(req: AnyRequest): string | undefined {
  return cookieOf(req);
}
