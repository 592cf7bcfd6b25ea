/** Routes without credentials: the CA certificate (checked against a token's fingerprint), health, and joining with a token. */
import { hostname as osHostname } from 'node:os';
import { Type } from '@sinclair/typebox';
import { JoinReply, JoinRequest } from '../../core/protocol.js';
import type { App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';

export function registerPublicRoutes(app: App, server: ProtectionServer): void {
  app.get('/api/v1/ca', { schema: { response: { 200: Type.Object({ cert: Type.String(), fingerprint: Type.String() }) } } }, () => ({
    cert: server.data.ca.cert,
    fingerprint: server.data.caFingerprint,
  }));

  app.get('/api/v1/health', { schema: { response: { 200: Type.Object({ ok: Type.Boolean(), server: Type.String() }) } } }, () => ({ ok: true, server: osHostname() }));

  // Joining happens over TLS the agent already verified against the token's CA fingerprint.
  app.post('/api/v1/join', { schema: { body: JoinRequest, response: { 200: JoinReply } } }, async (req) => server.join(req.body.token, req.body.publicKey, req.body.hostname, req.body.name));
}
