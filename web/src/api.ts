/**
 * The API as the browser calls it: same-origin fetch with the session cookie, the session's CSRF
 * token on every state-changing request, and the server's error shape turned into ApiError.
 */
let csrf = '';

export function setCsrf(token: string): void {
  csrf = token;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await r.text();
  const data: unknown = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(r.status, err?.message ?? r.statusText, err?.code);
  }
  return data as T;
}

export interface User {
  name: string;
  role: 'admin' | 'user';
  uid: number;
  gids: number[];
}

export interface Agent {
  id: string;
  name: string;
  hostname: string;
  status: 'online' | 'offline' | 'revoked';
  lastSeen: string | null;
  sources: string[];
}

export interface Group {
  name: string;
  syncEveryMs: number | null;
  points: string[];
  retainMs: number;
  compress: boolean;
  throttleBps: number | null;
}

export interface Source {
  name: string;
  group: string;
  agent: string;
  kind: 'dir' | 'image' | 'btrfs' | 'postgres' | 'sqlite';
  path: string;
  /** how the agent reads it (as at source add; PATCH /api/v1/sources/NAME changes them) */
  options?: {
    tracker?: 'auto' | 'full' | 'qcow2-bitmap' | 'btrfs';
    snapshotDir?: string;
    preSnapshot?: string;
    postSnapshot?: string;
    postgres?: { connect: string; bin?: string };
    sqlite?: { ship?: 'continuous' | 'frequency' };
  };
  status: string;
  /** from the oldest point to the newest point or shipped log (database sources: any time between) */
  recoverable?: { from: string; to: string } | null;
  lastDrill?: { time: string; ok: boolean; detail: string } | null;
  latestPoint: { id: string; time: string } | null;
  points: number;
  rpo: { compliant: boolean } | null;
  lastJob: { id: string; type: string; state: string; finished: string | null } | null;
}

export interface Job {
  id: string;
  type: string;
  source: string;
  agent: string;
  state: string;
  origin: string;
  params: Record<string, unknown>;
  progress: { phase?: string; entries?: number; bytesDone?: number; totalBytes?: number; readBytes?: number; sentBytes?: number } | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  created: string;
  started: string | null;
  finished: string | null;
}

export interface Alert {
  id: number;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  object: string;
  message: string;
  state: 'active' | 'resolved';
  raised: string;
  resolved: string | null;
}

export interface Point {
  id: string;
  source: string;
  /** 'dir': the point holds a file tree (dir, btrfs and database sources); 'image': one image file */
  kind: 'dir' | 'image';
  time: string;
  logicalBytes: number;
  files: number;
  newBytes: number;
}

export interface BrowseEntry {
  name: string;
  path: string;
  type: string;
  size: number;
  mtimeNs: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface PointVersion {
  point: string;
  time: string;
  type: string;
  size: number;
  mtimeNs: string;
  changed: boolean;
}
