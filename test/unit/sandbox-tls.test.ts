/**
 * The sandbox's TLS mode: https URLs, a server certificate from a generated CA, TLS 1.2 as the floor,
 * and (with requireClientCert) client certificates checked during the handshake.
 */
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
  type PemPair,
} from '../../lib/crypto/tls-certs.js';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminJson, createTestClient } from '../../sandbox/test-client.js';
import { tlsFetch } from '../../sandbox/tls-client.js';

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let server: PemPair;
let client: PemPair;
let strangerClient: PemPair;

beforeAll(async () => {
  ca = await createCertificateAuthority('sandbox-tls test CA');
  otherCa = await createCertificateAuthority('unrelated CA');
  server = await issueCertificate(ca, {
    commonName: 'localhost',
    altNames: ['localhost', '127.0.0.1'],
    usage: 'server',
  });
  client = await issueCertificate(ca, { commonName: 'connector', usage: 'client' });
  strangerClient = await issueCertificate(otherCa, { commonName: 'connector', usage: 'client' });
});

async function rejection(p: Promise<unknown>): Promise<{ code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string };
  }
  throw new Error('expected a rejection');
}

/**
 * Connects with raw TLS and sends one HTTP request. Resolves with the negotiated protocol once the
 * server answers; rejects with the handshake error, or CLOSED_BY_SERVER when the server hangs up
 * without answering (Node's TLS server refuses a TLS 1.3 client certificate after the client's
 * Finished by closing the connection, without an alert).
 */
function handshake(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts });
    s.once('secureConnect', () =>
      s.write('GET /fhir/metadata HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n'),
    );
    s.once('data', () => {
      resolve(s.getProtocol() ?? '');
      s.destroy();
    });
    s.once('error', reject);
    s.once('close', () => reject(Object.assign(new Error('closed by server'), { code: 'CLOSED_BY_SERVER' })));
  });
}

describe('sandbox over TLS', () => {
  let sb: SandboxHandle;
  beforeAll(async () => {
    sb = await startSandbox({ seed: 3, size: 10, tls: { certPem: server.certPem, keyPem: server.keyPem } });
  });
  afterAll(async () => sb?.close());

  it('serves https URLs and answers a client that trusts its CA', async () => {
    expect(sb.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(sb.fhirBaseUrl.startsWith('https://')).toBe(true);
    expect(sb.tokenUrl.startsWith('https://')).toBe(true);
    const ref = { ...sb, tls: { caPem: ca.certPem } };
    const stats = await adminJson<{ tokenRequests: number }>(ref, '/admin/stats');
    expect(typeof stats.tokenRequests).toBe('number');
    const tc = await createTestClient(ref, { scopes: ['system/Patient.rs'] });
    const token = await tc.token();
    const res = await tlsFetch(
      `${sb.fhirBaseUrl}/Patient?_count=2`,
      { caPem: ca.certPem },
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(res.status).toBe(200);
  });

  it('is refused by a client that does not trust its CA', async () => {
    const err = await rejection(tlsFetch(`${sb.url}/admin/stats`, { caPem: otherCa.certPem }));
    expect(err.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await expect(fetch(`${sb.url}/admin/stats`)).rejects.toThrow(); // system roots do not know the dev CA
  });

  it('refuses TLS 1.1 and below; negotiates 1.2 or 1.3', async () => {
    const port = Number(new URL(sb.url).port);
    await expect(handshake(port, { ca: ca.certPem, maxVersion: 'TLSv1.2' })).resolves.toBe('TLSv1.2');
    await expect(handshake(port, { ca: ca.certPem })).resolves.toBe('TLSv1.3');
    const err = await rejection(
      handshake(port, { ca: ca.certPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    );
    expect(err.code).toMatch(/^ERR_SSL_/);
  });

  it('refuses option values that would weaken it', async () => {
    await expect(startSandbox({ size: 1, tls: { ...server, minVersion: 'TLSv1.1' as 'TLSv1.2' } })).rejects.toThrow(
      /minVersion/,
    );
    await expect(startSandbox({ size: 1, tls: { ...server, requireClientCert: true } })).rejects.toThrow(/caPem/);
  });
});

describe('sandbox with mutual TLS', () => {
  let sb: SandboxHandle;
  beforeAll(async () => {
    sb = await startSandbox({
      seed: 3,
      size: 10,
      tls: { certPem: server.certPem, keyPem: server.keyPem, caPem: ca.certPem, requireClientCert: true },
    });
  });
  afterAll(async () => sb?.close());

  it('accepts a client certificate signed by its CA', async () => {
    const ref = { ...sb, tls: { caPem: ca.certPem, certPem: client.certPem, keyPem: client.keyPem } };
    const tc = await createTestClient(ref, { scopes: ['system/Patient.rs'] });
    expect(typeof (await tc.token())).toBe('string');
  });

  it('refuses, during the handshake, a client with no certificate or one from another CA', async () => {
    const port = Number(new URL(sb.url).port);
    for (const identity of [{}, { cert: strangerClient.certPem, key: strangerClient.keyPem }]) {
      const err = await rejection(handshake(port, { ca: ca.certPem, ...identity }));
      expect(err.code).toMatch(/^ERR_SSL_|^ECONNRESET$|^CLOSED_BY_SERVER$/);
      await expect(
        tlsFetch(`${sb.url}/admin/stats`, {
          caPem: ca.certPem,
          ...(identity.cert ? { certPem: identity.cert, keyPem: identity.key } : {}),
        }),
      ).rejects.toThrow();
    }
    // Same story at TLS 1.2, where the refusal happens before the client's Finished.
    const err12 = await rejection(handshake(port, { ca: ca.certPem, maxVersion: 'TLSv1.2' }));
    expect(err12.code).toMatch(/^ERR_SSL_|^ECONNRESET$/);
    await expect(handshake(port, { ca: ca.certPem, cert: client.certPem, key: client.keyPem })).resolves.toBe(
      'TLSv1.3',
    );
  });
});
