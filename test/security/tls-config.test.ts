/**
 * Per-integration TLS material from secret references: file:/env: resolution, a group/world-readable
 * key file refused, mismatched or half-configured client identity refused, no floor below TLS 1.2,
 * verification always on, and one agent per integration rebuilt when its material changes.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors/index.js';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
  type PemPair,
} from '../../lib/crypto/tls-certs.js';
import {
  VendorAgents,
  agentOptions,
  loadVendorTls,
  tlsFailureCode,
  validateVendorTls,
} from '../../lib/vendors/tls-options.js';

let dir: string;
let ca: CertificateAuthority;
let client: PemPair;
let other: PemPair;

async function write(name: string, text: string, mode: number): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, text, { mode });
  await fs.chmod(file, mode);
  return file;
}

async function configError(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('BEGIN');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vendor-tls-'));
  ca = await createCertificateAuthority('cfg CA');
  client = await issueCertificate(ca, { commonName: 'c', usage: 'client' });
  other = await issueCertificate(ca, { commonName: 'other', usage: 'client' });
});
afterAll(async () => {
  delete process.env.VENDOR_TLS_TEST_KEY;
  await fs.rm(dir, { recursive: true, force: true });
});

describe('loadVendorTls', () => {
  it('reads file: and env: references into validated PEMs', async () => {
    const caFile = await write('ca.pem', ca.certPem, 0o644);
    const certFile = await write('client.pem', client.certPem, 0o644);
    process.env.VENDOR_TLS_TEST_KEY = client.keyPem.replace(/\n/g, '\\n'); // one-line form
    const t = await loadVendorTls({
      caRef: `file:${caFile}`,
      clientCertRef: `file:${certFile}`,
      clientKeyRef: 'env:VENDOR_TLS_TEST_KEY',
    });
    expect(t).toMatchObject({ caPem: ca.certPem, clientCertPem: client.certPem, minVersion: 'TLSv1.2' });
    expect(t.clientKeyPem).toBe(client.keyPem);
  });

  it('refuses a key file readable by group or others, naming the field', async () => {
    const certFile = await write('c2.pem', client.certPem, 0o644);
    for (const mode of [0o640, 0o604]) {
      const keyFile = await write(`key-${mode.toString(8)}.pem`, client.keyPem, mode);
      const err = await configError(
        loadVendorTls({ clientCertRef: `file:${certFile}`, clientKeyRef: `file:${keyFile}` }),
      );
      expect(err.message).toMatch(/tls\.clientKeyRef.*chmod 600|chmod 600/);
    }
    const ok = await write('key-600.pem', client.keyPem, 0o600);
    await expect(
      loadVendorTls({ clientCertRef: `file:${certFile}`, clientKeyRef: `file:${ok}` }),
    ).resolves.toBeDefined();
  });

  it('refuses bad references and mismatched or half-configured identities', async () => {
    const keyFile = await write('other-key.pem', other.keyPem, 0o600);
    const certFile = await write('c3.pem', client.certPem, 0o644);
    await configError(loadVendorTls({ caRef: 'relative/ca.pem' }));
    await configError(loadVendorTls({ caRef: 'file:relative/ca.pem' }));
    await configError(loadVendorTls({ caRef: `file:${path.join(dir, 'missing.pem')}` }));
    await configError(loadVendorTls({ caRef: 'env:NOT_SET_ANYWHERE_42' }));
    // key of another cert
    await configError(loadVendorTls({ clientCertRef: `file:${certFile}`, clientKeyRef: `file:${keyFile}` }));
    await configError(loadVendorTls({ clientCertRef: `file:${certFile}` }));
    const notPem = await write('junk.pem', 'not a certificate', 0o644);
    await configError(loadVendorTls({ caRef: `file:${notPem}` }));
    const e = await configError(loadVendorTls({ minVersion: 'TLSv1.1' }));
    expect(e.message).toContain('minVersion');
    expect(() => validateVendorTls({ clientKeyPem: client.keyPem, clientCertPem: 'nope' })).toThrow(ConfigError);
  });
});

describe('agents', () => {
  it('always verify, never below TLS 1.2, trust exactly what is configured', () => {
    expect(agentOptions(undefined)).toMatchObject({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
    expect(agentOptions(undefined)).not.toHaveProperty('ca');
    const o = agentOptions({
      caPem: ca.certPem,
      clientCertPem: client.certPem,
      clientKeyPem: client.keyPem,
      minVersion: 'TLSv1.3',
    });
    expect(o).toMatchObject({
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
      cert: client.certPem,
      key: client.keyPem,
    });
    expect(o.ca).toHaveLength(1);
    expect((agentOptions({ caPem: ca.certPem, includeSystemRoots: true }).ca as string[]).length).toBeGreaterThan(10);
    expect(() => agentOptions({ minVersion: 'TLSv1' as 'TLSv1.2' })).toThrow(ConfigError);
  });

  it('are cached per integration and rebuilt when the material changes', () => {
    const agents = new VendorAgents();
    const a = agents.agentFor('itg-a', { caPem: ca.certPem });
    expect(agents.agentFor('itg-a', { caPem: ca.certPem })).toBe(a);
    expect(agents.agentFor('itg-b', { caPem: ca.certPem })).not.toBe(a);
    const rotated = agents.agentFor('itg-a', {
      caPem: ca.certPem,
      clientCertPem: client.certPem,
      clientKeyPem: client.keyPem,
    });
    expect(rotated).not.toBe(a);
    agents.forget('itg-a');
    expect(
      agents.agentFor('itg-a', { caPem: ca.certPem, clientCertPem: client.certPem, clientKeyPem: client.keyPem }),
    ).not.toBe(rotated);
    agents.closeAll();
  });

  it('classifies TLS failures by code only', () => {
    expect(tlsFailureCode(Object.assign(new Error('x'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }))).toBe(
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    );
    expect(tlsFailureCode(Object.assign(new Error('x'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }))).toBe(
      'ERR_TLS_CERT_ALTNAME_INVALID',
    );
    expect(
      tlsFailureCode(Object.assign(new Error('write EPROTO ... tlsv1 alert protocol version'), { code: 'EPROTO' })),
    ).toBe('TLS_PROTOCOL_VERSION');
    expect(tlsFailureCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    expect(tlsFailureCode(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBeUndefined();
    expect(tlsFailureCode(undefined)).toBeUndefined();
  });
});
