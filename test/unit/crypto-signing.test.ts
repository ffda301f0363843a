import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, InvalidArgumentError } from '../../lib/errors/index.js';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { generateIntegrationSigningKey, loadSigningKey } from '../../lib/keys/signing-keys.js';
import type { GeneratedSigningKey, SigningAlg } from '../../lib/keys/signing-keys.js';
import { settledError } from '../helpers.js';

let root: string;
const generated: Partial<Record<SigningAlg, GeneratedSigningKey>> = {};

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'signing-test-'));
  for (const alg of ['ES384', 'RS384'] as const) {
    generated[alg] = await generateIntegrationSigningKey({
      alg,
      secretsDir: path.join(root, 'secrets'),
      integrationId: `int-${alg.toLowerCase()}`,
    });
  }
}, 60_000);
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function pemBody(pem: string): string {
  return pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
}

describe.each(['ES384', 'RS384'] as const)('integration signing key (%s)', (alg) => {
  it('writes a 0600 PKCS#8 file in a 0700 dir, with kid = RFC 7638 thumbprint', async () => {
    const g = generated[alg]!;
    expect(g.privateKeyRef.startsWith('file:')).toBe(true);
    const file = g.privateKeyRef.slice('file:'.length);
    expect(path.isAbsolute(file)).toBe(true);
    expect(path.basename(file)).toBe(`int-${alg.toLowerCase()}-${g.kid}.pem`);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect(await fs.readFile(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(g.kid).toBe(await calculateJwkThumbprint(g.publicJwk, 'sha256'));
    expect(g.publicJwk).toMatchObject({ kid: g.kid, alg, use: 'sig' });
    expect(g.publicJwk.d).toBeUndefined();
  });

  it('signs SMART client assertions that verify with the public JWK', async () => {
    const g = generated[alg]!;
    const privateKey = await loadSigningKey(g.privateKeyRef, alg);
    const now = new Date();
    const aud = 'https://ehr.example.test/oauth2/token';
    const jwt = await signClientAssertion({ clientId: 'client-123', audience: aud, kid: g.kid, alg, privateKey, now });
    expect(decodeProtectedHeader(jwt)).toEqual({ alg, kid: g.kid, typ: 'JWT' });
    const { payload } = await jwtVerify(jwt, await importJWK(g.publicJwk, alg), {
      issuer: 'client-123',
      subject: 'client-123',
      audience: aud,
      algorithms: [alg],
      typ: 'JWT',
      currentDate: now,
    });
    const iat = Math.floor(now.getTime() / 1000);
    expect(payload.iat).toBe(iat);
    expect(payload.exp).toBe(iat + 240);
    expect(typeof payload.jti).toBe('string');
    expect(payload.jti!.length).toBeGreaterThanOrEqual(22);
  });
});

describe('signClientAssertion', () => {
  it('uses a fresh jti on every call and never exceeds 5 minutes', async () => {
    const g = generated.ES384!;
    const privateKey = await loadSigningKey(g.privateKeyRef, 'ES384');
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.date({ min: new Date('2020-01-01'), max: new Date('2040-01-01'), noInvalidDate: true }),
        async (lifetimeSeconds, now) => {
          const jwt = await signClientAssertion({
            clientId: 'c',
            audience: 'https://a.test/token',
            kid: g.kid,
            alg: 'ES384',
            privateKey,
            lifetimeSeconds,
            now,
          });
          const { payload } = await jwtVerify(jwt, await importJWK(g.publicJwk, 'ES384'), { currentDate: now });
          expect(payload.exp! - payload.iat!).toBe(lifetimeSeconds);
          expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
          expect(seen.has(payload.jti!)).toBe(false);
          seen.add(payload.jti!);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('refuses a lifetime above 300 s (or not a positive integer)', async () => {
    const g = generated.ES384!;
    const privateKey = await loadSigningKey(g.privateKeyRef, 'ES384');
    for (const lifetimeSeconds of [301, 3600, 0, -1, 1.5]) {
      const err = await settledError(
        signClientAssertion({ clientId: 'c', audience: 'a', kid: g.kid, alg: 'ES384', privateKey, lifetimeSeconds }),
      );
      expect(err).toBeInstanceOf(InvalidArgumentError);
    }
  });
});

describe('loadSigningKey', () => {
  it('refuses a group/world-readable key file without echoing key material', async () => {
    const g = generated.RS384!;
    const file = g.privateKeyRef.slice('file:'.length);
    const pem = await fs.readFile(file, 'utf8');
    const loose = path.join(root, 'loose.pem');
    await fs.writeFile(loose, pem, { mode: 0o644 });
    await fs.chmod(loose, 0o644);
    const err = await settledError(loadSigningKey(`file:${loose}`, 'RS384'));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('0644');
    expect((err as Error).message).not.toContain(pemBody(pem).slice(0, 40));
  });

  it('loads env: references (PEM with literal \\n escapes), refuses missing vars and wrong key types', async () => {
    const g = generated.ES384!;
    const pem = await fs.readFile(g.privateKeyRef.slice('file:'.length), 'utf8');
    const name = 'EHR_TEST_SIGNING_KEY_PEM';
    process.env[name] = pem.trim().replace(/\n/g, '\\n');
    try {
      const key = await loadSigningKey(`env:${name}`, 'ES384');
      const jwt = await signClientAssertion({
        clientId: 'c',
        audience: 'a',
        kid: g.kid,
        alg: 'ES384',
        privateKey: key,
      });
      await jwtVerify(jwt, await importJWK(g.publicJwk, 'ES384'));
      // An EC key cannot be used as RS384; the error names the reference, not the key.
      const err = await settledError(loadSigningKey(`env:${name}`, 'RS384'));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(`env:${name}`);
      expect((err as Error).message).not.toContain(pemBody(pem).slice(0, 40));
    } finally {
      delete process.env[name];
    }
    expect(await settledError(loadSigningKey(`env:${name}`, 'ES384'))).toBeInstanceOf(ConfigError);
    expect(await settledError(loadSigningKey('vault:secret/x', 'ES384'))).toBeInstanceOf(ConfigError);
    expect(await settledError(loadSigningKey('file:relative.pem', 'ES384'))).toBeInstanceOf(ConfigError);
  });

  it('refuses a file that holds garbage, without echoing it', async () => {
    const junk = path.join(root, 'junk.pem');
    await fs.writeFile(junk, '-----BEGIN PRIVATE KEY-----\nTk9UQUtFWQ==\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
    const err = await settledError(loadSigningKey(`file:${junk}`, 'ES384'));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('Tk9UQUtFWQ');
  });
});
