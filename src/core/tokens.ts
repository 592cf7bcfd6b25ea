/**
 * Join and admin tokens as users copy them around. Both carry the SHA-256 fingerprint of the
 * server's certificate authority, so whoever holds a token can verify the server on first
 * contact (no trust-on-first-use):
 *
 *   join:  hfj1.<id>.<secret>.<ca fingerprint hex>
 *   admin: hfa1.<secret>.<ca fingerprint hex>
 */
import { createHash, X509Certificate } from 'node:crypto';
import { HoldfastError } from './errors.js';

export interface JoinToken {
  id: string;
  secret: string;
  caFingerprint: string;
}

export interface AdminToken {
  secret: string;
  caFingerprint: string;
}

/** Subject CN of the server's certificate; agents' certificates carry AGENT_CN_PREFIX + id. */
export const SERVER_CN = 'holdfast-server';
export const AGENT_CN_PREFIX = 'holdfast-agent:';

const HEX64 = /^[0-9a-f]{64}$/;
const ID = /^[0-9a-f]{16,64}$/;
const SECRET = /^[A-Za-z0-9_-]{32,128}$/;

export function formatJoinToken(t: JoinToken): string {
  return `hfj1.${t.id}.${t.secret}.${t.caFingerprint}`;
}

export function parseJoinToken(text: string): JoinToken {
  const [tag, id, secret, fp, ...rest] = text.trim().split('.');
  if (tag !== 'hfj1' || rest.length > 0 || !id || !ID.test(id) || !secret || !SECRET.test(secret) || !fp || !HEX64.test(fp)) {
    throw new HoldfastError('BAD_ARGUMENT', 'not a Holdfast join token (expected hfj1.<id>.<secret>.<fingerprint>; create one with `holdfast agent-token create`)');
  }
  return { id, secret, caFingerprint: fp };
}

export function formatAdminToken(t: AdminToken): string {
  return `hfa1.${t.secret}.${t.caFingerprint}`;
}

export function parseAdminToken(text: string): AdminToken {
  const [tag, secret, fp, ...rest] = text.trim().split('.');
  if (tag !== 'hfa1' || rest.length > 0 || !secret || !SECRET.test(secret) || !fp || !HEX64.test(fp)) {
    throw new HoldfastError('UNAUTHORIZED', 'not a Holdfast admin token (expected hfa1.<secret>.<fingerprint>, as written to <data>/admin-token)');
  }
  return { secret, caFingerprint: fp };
}

/** SHA-256 of a certificate's DER, lower-case hex: the fingerprint tokens carry. */
export function certFingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}
