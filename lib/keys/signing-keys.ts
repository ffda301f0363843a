/**
 * Per-integration client-assertion signing keys (SMART Backend Services, RS384 or ES384).
 * The private key never enters the database or config: it is written as a PKCS#8 PEM file with mode
 * 0600 under the secrets directory (0700), and integrations store only a reference to it
 * (`file:<absolute path>` or `env:VARNAME`). Error messages name the reference, never key material
 * (DESIGN §4 invariant 11).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importJWK, importPKCS8 } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { ID_PATTERN } from '../domain.js';
import { ConfigError, InvalidArgumentError } from '../errors/index.js';
import { resolveSecret } from '../config/secrets.js';

export type SigningAlg = 'ES384' | 'RS384';
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES384', 'RS384'];

export interface GeneratedSigningKey {
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key. */
  kid: string;
  /** Public JWK with kid, alg and use=sig — what goes into our JWKS. */
  publicJwk: JWK;
  /** `file:<absolute path>` of the 0600 PKCS#8 PEM. */
  privateKeyRef: string;
}

const REF_FIELD = 'privateKeyRef';

function assertAlg(alg: string): asserts alg is SigningAlg {
  if (!(SIGNING_ALGS as readonly string[]).includes(alg))
    throw new InvalidArgumentError('alg', 'must be ES384 or RS384');
}

export async function generateIntegrationSigningKey(opts: {
  alg: SigningAlg;
  secretsDir: string;
  integrationId: string;
}): Promise<GeneratedSigningKey> {
  assertAlg(opts.alg);
  if (!ID_PATTERN.test(opts.integrationId))
    throw new InvalidArgumentError('integrationId', 'is not a valid integration id');
  const { publicKey, privateKey } = await generateKeyPair(opts.alg, { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const publicJwk: JWK = { ...jwk, kid, alg: opts.alg, use: 'sig' };

  const dir = path.resolve(opts.secretsDir);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${opts.integrationId}-${kid}.pem`);
  const pem = await exportPKCS8(privateKey);
  await fs.writeFile(file, pem, { mode: 0o600, flag: 'wx' });
  await fs.chmod(file, 0o600);
  return { kid, publicJwk, privateKeyRef: `file:${file}` };
}

/**
 * Loads a private signing key from `file:<absolute path>` (refused when group/world-accessible) or
 * `env:VARNAME` (PKCS#8 PEM, or a private JWK as JSON). Returns a non-extractable CryptoKey.
 */
export async function loadSigningKey(ref: string, alg: SigningAlg): Promise<CryptoKey> {
  assertAlg(alg);
  if (typeof ref !== 'string' || !/^(file|env):/.test(ref))
    throw new ConfigError(REF_FIELD, 'must start with file: or env:');
  const where = ref;
  const material = await resolveSecret(ref, { field: REF_FIELD });
  const text = material.trim();
  try {
    if (text.startsWith('{')) {
      const jwk = JSON.parse(text) as JWK;
      if (typeof jwk.d !== 'string') throw new Error('not a private JWK');
      const key = await importJWK(jwk, alg, { extractable: false });
      if (key instanceof Uint8Array) throw new Error('not an asymmetric key');
      return key;
    }
    return await importPKCS8(text, alg, { extractable: false });
  } catch {
    // Never echo the parser's message: it can quote the input.
    throw new ConfigError(REF_FIELD, `${where} does not hold a ${alg} private key (PKCS#8 PEM or private JWK)`);
  }
}

/** The URL of one integration's key set on our hosted JWKS (workers/jwks-server.ts). */
export function jwksUrlFor(publicBaseUrl: string, integrationId: string): string {
  return `${publicBaseUrl.replace(/\/$/, '')}/jwks/${encodeURIComponent(integrationId)}.json`;
}
