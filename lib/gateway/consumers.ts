/**
 * Consumers of the mediation gateway (issue 12 item 2): the organisation's own systems, each a SMART Backend
 * Services client bound to one tenant and one purpose, holding SMART v2 scopes within that purpose's resource
 * types (lib/fhir/classification.ts). Registration, revocation and restoration are audited in the transaction
 * that makes them. Revocation takes effect on the consumer's next request: the gateway reads the status on every
 * token request and every FHIR request. Keys are public only: a JWKS URL, a JWKS file's public members, or a key
 * pair made here (`--dev-key`, the private key in a 0600 file under the secrets directory, for trying it by hand).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import type { JSONWebKeySet, JWK } from 'jose';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ID_PATTERN } from '../domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { assertTypesWithinPurpose, isPurpose, PURPOSES } from '../fhir/classification.js';
import type { Purpose } from '../fhir/classification.js';
import type { SigningAlg } from '../keys/signing-keys.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { ConsumerRow, ConsumerStatus } from './consumers-repository.js';
import {
  insertConsumer,
  listConsumerRows,
  readConsumer,
  setConsumerStatus,
  tenantIsRegistered,
} from './consumers-repository.js';
import { formatScope, parseScopes } from './scopes.js';
import { assertWriteScopesAllowed } from './write-scopes.js';

export type { ConsumerRow, ConsumerStatus };

export const CONSUMER_ALGS: readonly SigningAlg[] = ['ES384', 'RS384'];
const PUBLIC_MEMBERS = ['kty', 'kid', 'alg', 'use', 'key_ops', 'n', 'e', 'crv', 'x', 'y'] as const;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const MAX_KEYS = 10;

export type ConsumerKeySource =
  | { kind: 'jwks-url'; url: string }
  | { kind: 'jwks'; jwks: unknown }
  | { kind: 'dev-key'; alg: SigningAlg; secretsDir: string };

export interface NewConsumer {
  id: string;
  tenantId: string;
  purpose: string;
  /** Space-separated SMART v2 scopes, e.g. `system/Patient.rs system/Observation.rs`. */
  scopes: string;
  keys: ConsumerKeySource;
  ratePerMinute?: number;
  rateBurst?: number;
}

/** Where `--dev-key` keeps a consumer's private key (PKCS#8 PEM, 0600): the secrets directory, never the database. */
export function devKeyPath(secretsDir: string, consumerId: string, kid: string): string {
  return path.join(path.resolve(secretsDir), 'gateway-consumers', `${consumerId}-${kid}.pem`);
}

/** A JWKS URL the gateway may fetch: https, or plain http to loopback; no credentials, query or fragment. */
export function checkJwksUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('--jwks-url', 'is not a URL');
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || /^127\./.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new InvalidArgumentError('--jwks-url', 'must be https (plain http only to a loopback address)');
  if (url.username || url.password)
    throw new InvalidArgumentError('--jwks-url', 'must not carry a user name or password');
  if (url.search || url.hash || value.includes('?') || value.includes('#'))
    throw new InvalidArgumentError('--jwks-url', 'must not carry a query or a fragment');
  if (value.length > 2048) throw new InvalidArgumentError('--jwks-url', 'is longer than 2048 characters');
  return value;
}

/** The public members of a JWKS's signing keys; refuses private members, keys without kid, and other algs. */
export function publicJwks(value: unknown): JSONWebKeySet {
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS)
    throw new InvalidArgumentError('--jwks-file', `must hold a JWKS with 1 to ${MAX_KEYS} keys`);
  return {
    keys: keys.map((k: unknown, i) => {
      const jwk = (typeof k === 'object' && k !== null ? k : {}) as Record<string, unknown>;
      if (PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined))
        throw new InvalidArgumentError('--jwks-file', `key ${i} holds private key material; give public keys only`);
      if (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.kid.length > 200)
        throw new InvalidArgumentError('--jwks-file', `key ${i} has no kid`);
      if (jwk.kty !== 'EC' && jwk.kty !== 'RSA')
        throw new InvalidArgumentError('--jwks-file', `key ${i} is not EC or RSA`);
      if (jwk.alg !== undefined && !(CONSUMER_ALGS as readonly unknown[]).includes(jwk.alg))
        throw new InvalidArgumentError(
          '--jwks-file',
          `key ${i} is for ${String(jwk.alg)}; the gateway takes ES384 or RS384`,
        );
      const out: Record<string, unknown> = {};
      for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
      return out as JWK;
    }),
  };
}

function rate(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000)
    throw new InvalidArgumentError(name, 'must be an integer from 1 to 1000000');
  return n;
}

async function devKeyPair(alg: SigningAlg): Promise<{ publicJwk: JWK; pem: string; kid: string }> {
  if (!CONSUMER_ALGS.includes(alg)) throw new InvalidArgumentError('--alg', 'must be ES384 or RS384');
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { publicJwk: { ...jwk, kid, alg, use: 'sig' }, pem: await exportPKCS8(privateKey), kid };
}

/** Registers a consumer (audited `gateway.consumer.added`); the dev key file is written before the commit. */
export async function addConsumer(
  pool: Pool,
  input: NewConsumer,
  ctx: AuditContext,
): Promise<{ consumer: ConsumerRow; devKeyFile?: string }> {
  if (!ID_PATTERN.test(input.id))
    throw new InvalidArgumentError('--id', 'use 1-63 lowercase letters, digits or hyphens');
  if (!isPurpose(input.purpose)) throw new InvalidArgumentError('--purpose', `must be one of ${PURPOSES.join(', ')}`);
  const purpose: Purpose = input.purpose;
  const scopes = parseScopes(input.scopes, '--scopes', { writes: true });
  assertWriteScopesAllowed(purpose, scopes);
  // A scope for a type the purpose does not allow is refused here, naming the types (`*` is capped at read time).
  assertTypesWithinPurpose(
    purpose,
    scopes.flatMap((s) => (s.resourceType === '*' ? [] : [s.resourceType])),
  );
  const ratePerMinute = rate('--rate-limit', input.ratePerMinute, 600);
  const rateBurst = rate('--burst', input.rateBurst, 60);
  let jwksUrl: string | null = null;
  let jwks: JSONWebKeySet | null = null;
  let dev: { publicJwk: JWK; pem: string; kid: string; file: string } | undefined;
  switch (input.keys.kind) {
    case 'jwks-url':
      jwksUrl = checkJwksUrl(input.keys.url);
      break;
    case 'jwks':
      jwks = publicJwks(input.keys.jwks);
      break;
    case 'dev-key': {
      const pair = await devKeyPair(input.keys.alg);
      dev = { ...pair, file: devKeyPath(input.keys.secretsDir, input.id, pair.kid) };
      jwks = { keys: [pair.publicJwk] };
      break;
    }
  }
  const consumer = await withTransaction(pool, async (client) => {
    if (!(await tenantIsRegistered(client, input.tenantId))) throw new NotFoundError('tenant', input.tenantId);
    const row = await insertConsumer(client, {
      id: input.id,
      tenantId: input.tenantId,
      purpose,
      scopes: scopes.map(formatScope),
      jwksUrl,
      jwks,
      ratePerMinute,
      rateBurst,
    });
    if (!row) throw new ConflictError('consumer', input.id);
    if (dev) {
      await fs.mkdir(path.dirname(dev.file), { recursive: true, mode: 0o700 });
      await fs.writeFile(dev.file, dev.pem, { mode: 0o600, flag: 'wx' });
      await fs.chmod(dev.file, 0o600);
    }
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'gateway.consumer.added',
        outcome: 'success',
        tenantId: input.tenantId,
        details: {
          consumerId: input.id,
          purpose,
          scopes: row.scopes,
          keySource: input.keys.kind,
          ...(jwksUrl ? { jwksHost: new URL(jwksUrl).host } : {}),
          ...(jwks ? { kids: jwks.keys.map((k) => k.kid) } : {}),
          ratePerMinute,
          rateBurst,
        },
      },
    ]);
    return row;
  });
  return { consumer, ...(dev ? { devKeyFile: dev.file } : {}) };
}

export async function listConsumers(db: Queryable, tenantId?: string): Promise<ConsumerRow[]> {
  return listConsumerRows(db, tenantId);
}

export async function showConsumer(db: Queryable, id: string): Promise<ConsumerRow> {
  const row = await readConsumer(db, id);
  if (!row) throw new NotFoundError('consumer', id);
  return row;
}

async function changeStatus(
  pool: Pool,
  id: string,
  to: ConsumerStatus,
  ctx: AuditContext,
  reason: string | undefined,
): Promise<ConsumerRow> {
  if (reason !== undefined && (reason.length === 0 || reason.length > 500))
    throw new InvalidArgumentError('--reason', 'must be 1-500 characters');
  return withTransaction(pool, async (client) => {
    const row = await readConsumer(client, id, { lock: true });
    if (!row) throw new NotFoundError('consumer', id);
    if (row.status === to) throw new ConflictError('consumer', id, `is already ${to}`);
    await setConsumerStatus(client, id, to);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: to === 'revoked' ? 'gateway.consumer.revoked' : 'gateway.consumer.restored',
        outcome: 'success',
        tenantId: row.tenantId,
        details: { consumerId: id, from: row.status, to, ...(reason ? { reason } : {}) },
      },
    ]);
    return { ...row, status: to };
  });
}

/** Revokes a consumer: its next token request and its next FHIR request (with any token) are refused. */
export function revokeConsumer(pool: Pool, id: string, ctx: AuditContext, reason?: string): Promise<ConsumerRow> {
  return changeStatus(pool, id, 'revoked', ctx, reason);
}

/**
 * Restores a revoked consumer: new tokens are issued again. Tokens issued before the restoration stay refused
 * (the gateway refuses a token issued before the consumer's last status change).
 */
export function restoreConsumer(pool: Pool, id: string, ctx: AuditContext, reason?: string): Promise<ConsumerRow> {
  return changeStatus(pool, id, 'active', ctx, reason);
}
