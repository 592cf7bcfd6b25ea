/**
 * The agent's credentials in its state directory (mode 0700, files 0600): the pinned CA, its
 * own key (generated here, never sent) and the certificate the server issued for it.
 *
 *   agent.json  {"server", "agentId", "name"}    ca.pem   cert.pem   key.pem
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { HoldfastError, errnoCode } from '../../core/errors.js';
import { parseJoinToken } from '../../core/tokens.js';
import type { JoinReply } from '../../core/protocol.js';
import { fetchPinnedCa, ServerClient } from './server-client.js';

export interface AgentState {
  server: string;
  agentId: string;
  name: string;
  ca: string;
  cert: string;
  key: string;
}

async function writeSecret(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  const fh = await open(tmp, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function loadAgentState(dir: string): Promise<AgentState | undefined> {
  let meta: { server: string; agentId: string; name: string };
  try {
    meta = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8')) as typeof meta;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new HoldfastError('BAD_ARGUMENT', `agent state in ${dir} is unreadable: ${(err as Error).message}`);
  }
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(join(dir, f), 'utf8')));
  return { ...meta, ca: ca as string, cert: cert as string, key: key as string };
}

/** Joins with a one-time token: verify the server by the token's fingerprint, send our public key, keep what comes back. */
export async function joinServer(dir: string, server: string, tokenText: string, name?: string): Promise<AgentState> {
  const token = parseJoinToken(tokenText);
  const ca = await fetchPinnedCa(server, token.caFingerprint);
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const client = new ServerClient(server, { ca }, 1);
  let reply: JoinReply;
  try {
    reply = await client.json<JoinReply>('POST', '/api/v1/join', {
      token: tokenText.trim(),
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      hostname: hostname(),
      ...(name ? { name } : {}),
    });
  } finally {
    await client.close();
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const state: AgentState = { server, agentId: reply.agentId, name: reply.name, ca, cert: reply.cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  await writeSecret(join(dir, 'key.pem'), state.key);
  await writeSecret(join(dir, 'cert.pem'), state.cert);
  await writeSecret(join(dir, 'ca.pem'), state.ca);
  // agent.json last: the state counts as joined once it exists.
  await writeSecret(join(dir, 'agent.json'), `${JSON.stringify({ server, agentId: state.agentId, name: state.name }, null, 2)}\n`);
  return state;
}
