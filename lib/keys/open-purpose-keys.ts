/**
 * The one place that builds the payload codec for every process that encrypts or decrypts Temporal
 * payloads (worker, CLI client, codec server, tests, the leak scan): the key hierarchy's payload
 * purpose — AES-256 keys `payload-v<N>` stored in PostgreSQL wrapped by the KEK (EHR_KEK_PROVIDER),
 * primary for encryption, older versions by id (rotation keeps old histories readable). Unwraps are
 * audited by the purpose-key store under `audit.actor`.
 */
import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../audit/chain.js';
import { createKekProvider } from './kek-factory.js';
import type { KekConfig } from './kek-factory.js';
import type { KekProvider } from './kek-provider.js';
import { KeyHierarchy } from './key-hierarchy.js';
import { createPayloadCodec } from '../crypto/payload-codec.js';
import type { EncryptionPayloadCodec } from '../crypto/payload-codec.js';
import { createPurposeKeys } from './purpose-key-store.js';
import type { PurposeKeys } from './purpose-key-store.js';
import type { Pool } from '../store/pool.js';

export interface PayloadCodecDeps {
  pool: Pool;
  /** Who unwraps payload keys (audited), e.g. `worker:<host>:<pid>`, `cli:<user>@<host>`, `codec-server:…`. */
  actor: string;
  /** An already opened KEK (the worker's KeyHierarchy); opened from config when omitted. */
  kek?: KekProvider;
}

export async function openPurposeKeys(config: Partial<KekConfig>, deps: PayloadCodecDeps): Promise<PurposeKeys> {
  const audit: AuditContext = { actor: deps.actor, correlationId: `payload-codec:${randomUUID()}` };
  const kek =
    deps.kek ??
    (await KeyHierarchy.open({
      pool: deps.pool,
      backend: await createKekProvider({ EHR_KEK_PROVIDER: 'local', ...config } as KekConfig),
      audit,
    }));
  return createPurposeKeys({ pool: deps.pool, kek, audit });
}

/** The payload codec every process uses: `dataConverter: { payloadCodecs: [codec] }`. */
export async function openPayloadCodec(
  config: Partial<KekConfig>,
  deps: PayloadCodecDeps,
): Promise<EncryptionPayloadCodec> {
  return createPayloadCodec((await openPurposeKeys(config, deps)).payload);
}
