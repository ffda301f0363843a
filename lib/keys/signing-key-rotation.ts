/**
 * In-band rotation of an integration's client-assertion signing key through our hosted JWKS
 * (DESIGN §5, key rotation: publish the successor, wait out vendor caches, switch kid, retire).
 * Each step is one transaction with its audit event, locks the integration row, and is idempotent
 * so a workflow (issue 5) can retry it: repeating a step that already happened changes nothing.
 * None of them bumps the credential generation: a rotation is not a revocation, and calls in flight
 * keep working (the old key stays published until it is retired).
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { generateIntegrationSigningKey } from './signing-keys.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { IntegrationSigningKey } from './signing-key-repository.js';
import {
  insertSigningKey,
  listSigningKeys,
  lockKeyOwner,
  mirrorCurrentKey,
  setSigningKeyState,
} from './signing-key-repository.js';

interface Locked {
  tenantId: string;
  authMethod: string;
  keys: IntegrationSigningKey[];
}

async function lock(client: PoolClient, integrationId: string): Promise<Locked> {
  const owner = await lockKeyOwner(client, integrationId);
  if (!owner) throw new NotFoundError('integration', integrationId);
  if (owner.authMethod !== 'private_key_jwt') {
    throw new ConflictError('integration', integrationId, `uses ${owner.authMethod}: it has no signing key to rotate`);
  }
  return { ...owner, keys: await listSigningKeys(client, integrationId) };
}

function audit(
  client: PoolClient,
  ctx: AuditContext,
  tenantId: string,
  integrationId: string,
  action: string,
  details: Record<string, unknown>,
): Promise<unknown> {
  return appendAuditEvents(client, [{ ...ctx, action, outcome: 'success', tenantId, integrationId, details }]);
}

/**
 * Generates a successor key pair (same algorithm as the current key unless `alg` says otherwise) and
 * publishes its public key in our JWKS. Returns the existing successor if there already is one.
 */
export async function publishSuccessorKey(
  pool: Pool,
  integrationId: string,
  ctx: AuditContext,
  opts: { secretsDir: string; alg?: 'ES384' | 'RS384' },
): Promise<IntegrationSigningKey> {
  return withTransaction(pool, async (client) => {
    const locked = await lock(client, integrationId);
    const existing = locked.keys.find((k) => k.state === 'successor');
    if (existing) return existing;
    const current = locked.keys.find((k) => k.state === 'current');
    const alg = opts.alg ?? current?.alg ?? 'ES384';
    const generated = await generateIntegrationSigningKey({ alg, secretsDir: opts.secretsDir, integrationId });
    const key = {
      integrationId,
      kid: generated.kid,
      alg,
      publicJwk: generated.publicJwk as Record<string, unknown>,
      privateKeyRef: generated.privateKeyRef,
      state: 'successor' as const,
    };
    await insertSigningKey(client, key);
    await audit(client, ctx, locked.tenantId, integrationId, 'signing_key.published', {
      kid: key.kid,
      alg,
      currentKid: current?.kid ?? null,
    });
    return (await listSigningKeys(client, integrationId)).find((k) => k.kid === key.kid)!;
  });
}

/**
 * Switches the kid used for assertions to the successor: successor → current, current → previous
 * (still published). Workers pick the new key up when their cached integration row turns over
 * (lib/vendors/credentials.ts, 15 s). With `expectedKid`, a repeat after success is a no-op.
 */
export async function activateSuccessorKey(
  pool: Pool,
  integrationId: string,
  ctx: AuditContext,
  opts: { expectedKid?: string } = {},
): Promise<{ kid: string; previousKid: string | null; changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const locked = await lock(client, integrationId);
    const current = locked.keys.find((k) => k.state === 'current');
    const successor = locked.keys.find((k) => k.state === 'successor');
    if (!successor) {
      if (current && (opts.expectedKid === undefined || current.kid === opts.expectedKid))
        return { kid: current.kid, previousKid: null, changed: false };
      throw new ConflictError('integration', integrationId, 'has no published successor key to activate');
    }
    if (opts.expectedKid !== undefined && successor.kid !== opts.expectedKid) {
      throw new ConflictError('integration', integrationId, `has successor ${successor.kid}, not ${opts.expectedKid}`);
    }
    if (current) await setSigningKeyState(client, integrationId, current.kid, 'previous');
    await setSigningKeyState(client, integrationId, successor.kid, 'current');
    await mirrorCurrentKey(client, successor);
    await audit(client, ctx, locked.tenantId, integrationId, 'signing_key.activated', {
      kid: successor.kid,
      previousKid: current?.kid ?? null,
    });
    return { kid: successor.kid, previousKid: current?.kid ?? null, changed: true };
  });
}

/** Stops publishing a key that no longer signs. The current key cannot be retired (activate a successor first). */
export async function retireKey(
  pool: Pool,
  integrationId: string,
  kid: string,
  ctx: AuditContext,
): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const locked = await lock(client, integrationId);
    const key = locked.keys.find((k) => k.kid === kid);
    if (!key) throw new InvalidArgumentError('kid', `integration ${integrationId} has no key ${kid}`);
    if (key.state === 'retired') return { changed: false };
    if (key.state === 'current')
      throw new ConflictError('signing key', kid, 'is the current key: activate a successor before retiring it');
    await setSigningKeyState(client, integrationId, kid, 'retired');
    await audit(client, ctx, locked.tenantId, integrationId, 'signing_key.retired', { kid, previousState: key.state });
    return { changed: true };
  });
}
