/**
 * The server's certificate authority: it signs the server's TLS certificate and one client
 * certificate per agent. Keys are ECDSA P-256. Agents pin the CA by the fingerprint their join
 * token carries, and accept only a server certificate whose subject is SERVER_CN (an agent's
 * certificate, signed by the same CA, cannot pose as the server).
 */
import { webcrypto, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

import { AGENT_CN_PREFIX, SERVER_CN } from '../core/tokens.js';

export { AGENT_CN_PREFIX, SERVER_CN };

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface CertKey {
  cert: string; // PEM
  key: string; // PKCS#8 PEM
}

async function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

async function keyPem(k: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', k);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f; // positive
  return b.toString('hex');
}

async function importCa(ca: CertKey): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const cert = new x509.X509Certificate(ca.cert);
  const der = x509.PemConverter.decodeFirst(ca.key);
  const key = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
  return { cert, key };
}

export async function createCa(): Promise<CertKey> {
  const keys = await newKeys();
  const name = `CN=Holdfast CA ${randomBytes(4).toString('hex')}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 20 * 365 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** The server's certificate: names for loopback, this host and the listen address. */
export async function issueServerCert(ca: CertKey, hosts: string[]): Promise<CertKey> {
  const { cert: caCert, key: caKey } = await importCa(ca);
  const keys = await newKeys();
  const names = new Set(['localhost', '127.0.0.1', '::1', hostname(), ...hosts.filter((h) => h && h !== '0.0.0.0' && h !== '::')]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${SERVER_CN}`,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 5 * 365 * DAY),
    signingKey: caKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([...names].map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** An agent's client certificate for the public key it generated itself (SPKI PEM). */
export async function issueAgentCert(ca: CertKey, agentId: string, publicKeyPem: string): Promise<string> {
  const { cert: caCert, key: caKey } = await importCa(ca);
  const publicKey = await webcrypto.subtle.importKey('spki', x509.PemConverter.decodeFirst(publicKeyPem), ALG, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${AGENT_CN_PREFIX}${agentId}`,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 5 * 365 * DAY),
    signingKey: caKey,
    publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return cert.toString('pem');
}

export { certFingerprint } from '../core/tokens.js';
