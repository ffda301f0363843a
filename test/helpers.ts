/**
 * Small helpers shared by test files.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK } from 'jose';
import { afterEach, beforeEach } from 'vitest';
import type { AuditEvent } from '../lib/audit/chain.js';
import type { AuditSigningKeySource } from '../lib/security/purpose-keys.js';

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** The error a promise rejects with, or undefined if it resolves. */
export async function settledError(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** A fresh temp dir for every test of the calling file (created in beforeEach, removed in afterEach); returns its path getter. */
export function useTempDirPerTest(prefix: string): () => string {
  let dir: string | undefined;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterEach(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });
  return () => {
    if (!dir) throw new Error('useTempDirPerTest: read the dir inside a test');
    return dir;
  };
}

/** A throwaway Ed25519 audit-checkpoint signer (the key hierarchy's own is exercised elsewhere). */
export function testAuditSigner(): AuditSigningKeySource {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = `audit-test-${randomBytes(3).toString('hex')}`;
  const publicJwk = exportJWK(publicKey);
  return {
    current: async () => ({ kid, privateKey, publicJwk: await publicJwk }),
    verificationKeys: async () => [{ kid, publicJwk: await publicJwk }],
  };
}

/** A synthetic audit event number `i` (no PHI). */
export function testAuditEvent(i: number, extra: Partial<AuditEvent> = {}, actor = 'worker:sync'): AuditEvent {
  return {
    actor,
    action: 'record.upserted',
    outcome: 'success',
    tenantId: 'tenant-a',
    integrationId: 'int-1',
    correlationId: `corr-${i}`,
    details: { i, resourceType: 'Observation', counts: { upserted: i % 7 } },
    ...extra,
  };
}
