/**
 * Small helpers shared by test files.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { exportJWK } from 'jose';
import { afterEach, beforeEach } from 'vitest';
import type { AuditEvent } from '../lib/audit/chain.js';
import type { AuditSigningKeySource } from '../lib/keys/purpose-keys.js';

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

/**
 * A fresh temp dir for every test of the calling file (created in beforeEach, removed in afterEach); returns
 * its path getter.
 */
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

/**
 * Everything an error reporter could print about `err`: `util.inspect` with hidden properties, and
 * every own property name and primitive value (enumerable or not, through each prototype up to
 * Object.prototype) — the walk vitest's serialiser does when it dumps an unhandled error. A test
 * asserts that a secret is absent from this, not merely from `err.message`.
 */
export function errorSerialisation(err: unknown): string {
  const out: string[] = [inspect(err, { showHidden: true, depth: 12, getters: false })];
  const seen = new Set<object>();
  const walk = (value: unknown, depth: number): void => {
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' && typeof value !== 'function') {
      out.push(String(value));
      return;
    }
    if (seen.has(value) || depth > 12 || Buffer.isBuffer(value)) return;
    seen.add(value);
    for (
      let obj: object | null = value;
      obj && obj !== Object.prototype && obj !== Function.prototype;
      obj = Object.getPrototypeOf(obj) as object | null
    ) {
      for (const key of Object.getOwnPropertyNames(obj)) {
        out.push(key);
        let child: unknown;
        try {
          child = (value as Record<string, unknown>)[key];
        } catch {
          continue;
        }
        walk(child, depth + 1);
      }
    }
  };
  walk(err, 0);
  return out.join('\n');
}
