import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { HoldfastError } from '../../core/errors.js';
import { createCa, issueAgentCert, issueServerCert, type CertKey } from '../../server/pki.js';
import { ServerClient } from './server-client.js';

/** An HTTPS server that asks for a client certificate of `clientCa` and answers with its CN. */
async function echoServer(tls: CertKey, clientCa: CertKey): Promise<{ url: string; server: Server; sockets: Set<TLSSocket> }> {
  const sockets = new Set<TLSSocket>();
  const server = createServer({ cert: tls.cert, key: tls.key, ca: clientCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const socket = req.socket as TLSSocket;
    sockets.add(socket);
    const cn = socket.getPeerCertificate().subject?.CN;
    setTimeout(() => res.end(JSON.stringify({ cn })), 20); // overlapping requests need several connections
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, server, sockets };
}

async function agentCreds(ca: CertKey): Promise<{ cert: string; key: string }> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { cert: await issueAgentCert(ca, 'a1', pub), key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

test('a client verifies the server against its pinned CA and presents its own certificate, on every connection', async () => {
  const ca = await createCa();
  const other = await createCa();
  const creds = await agentCreds(ca);
  const good = await echoServer(await issueServerCert(ca, []), ca);
  // Signed by another CA: an impostor with a certificate of the right name.
  const impostor = await echoServer(await issueServerCert(other, []), ca);
  // Signed by the right CA but not the server's certificate: another agent's, presented as a server.
  const agentAsServer = await echoServer({ cert: creds.cert, key: creds.key }, ca);
  try {
    const client = new ServerClient(good.url, { ca: ca.cert, ...creds }, 4);
    const answers = await Promise.all(Array.from({ length: 8 }, () => client.json<{ cn: string }>('GET', '/')));
    for (const a of answers) assert.equal(a.cn, 'holdfast-agent:a1');
    assert.ok(good.sockets.size > 1, `the requests shared ${good.sockets.size} connection(s); the test needs several`);
    await client.close();

    for (const [what, s] of [
      ['a server of another CA', impostor],
      ["another agent's certificate", agentAsServer],
    ] as const) {
      const c = new ServerClient(s.url, { ca: ca.cert, ...creds });
      await assert.rejects(c.json('GET', '/'), (err: HoldfastError) => err.code === 'SERVER_UNREACHABLE', what);
      assert.equal(s.sockets.size, 0, `${what}: no request reached it`);
      await c.close();
    }
  } finally {
    for (const s of [good, impostor, agentAsServer]) s.server.close();
  }
});
