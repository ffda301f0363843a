/**
 * Signed checkpoints over the audit chain (Certificate Transparency signed tree heads / CloudTrail
 * digests): checkpoint N says "the chain had eventSeq events and its head hash was headHash", chains
 * to checkpoint N-1 by hash, and is a compact Ed25519 JWS. Each one is stored in `audit_checkpoints`
 * AND appended to an anchor outside the database (anchor.ts). A hash chain alone cannot show that its
 * tail was cut off or that it was rebuilt from scratch; a signed head kept elsewhere can.
 *
 * Before signing, the events since the previous checkpoint are verified, so a checkpoint never
 * launders a tampered tail. Checkpoints are not audit events: they are a chain of their own. The JWS is
 * lib/audit/checkpoint-jws.ts; when to write one, lib/audit/checkpoint-scheduler.ts.
 */
import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { AuditWriteError, EhrError } from '../errors/index.js';
import type { AuditSigningKeySource } from '../keys/purpose-keys.js';
import type { Pool, PoolClient, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { AnchorLine, AuditAnchor } from './anchor.js';
import { ChainVerifier } from './chain-verifier.js';
import { readChainRows } from './rows.js';
import {
  AuditIntegrityError,
  CHECKPOINT_GENESIS_HASH,
  checkpointHashOf,
  publicEd25519Jwk,
  publicKeyFromJwk,
  signCheckpoint,
  verifyCheckpointJws,
} from './checkpoint-jws.js';
import type { CheckpointPayload, StoredCheckpoint } from './checkpoint-jws.js';

interface DbCheckpoint {
  checkpoint_seq: string;
  event_seq: string;
  head_hash: Buffer;
  previous_checkpoint_hash: Buffer;
  created_at: Date;
  kid: string;
  jws: string;
  checkpoint_hash: Buffer;
}

const SELECT_CHECKPOINTS = `SELECT checkpoint_seq::text AS checkpoint_seq, event_seq::text AS event_seq, head_hash,
       previous_checkpoint_hash, created_at, kid, jws, checkpoint_hash
  FROM audit_checkpoints`;

function fromDb(r: DbCheckpoint): StoredCheckpoint {
  return {
    chainId: '',
    checkpointSeq: Number(r.checkpoint_seq),
    eventSeq: Number(r.event_seq),
    headHash: r.head_hash.toString('hex'),
    previousCheckpointHash: r.previous_checkpoint_hash.toString('hex'),
    createdAt: r.created_at.toISOString(),
    kid: r.kid,
    jws: r.jws,
    checkpointHash: r.checkpoint_hash.toString('hex'),
  };
}

/** Every checkpoint in the database, ascending (the DB copy: `jws` is the authority, the rest are copies). */
export async function listCheckpoints(db: Queryable): Promise<StoredCheckpoint[]> {
  const { rows } = await db.query<DbCheckpoint>(`${SELECT_CHECKPOINTS} ORDER BY audit_checkpoints.checkpoint_seq`);
  return rows.map(fromDb);
}

async function lastCheckpoint(db: Queryable): Promise<StoredCheckpoint | undefined> {
  const { rows } = await db.query<DbCheckpoint>(
    `${SELECT_CHECKPOINTS} ORDER BY audit_checkpoints.checkpoint_seq DESC LIMIT 1`,
  );
  return rows[0] ? fromDb(rows[0]) : undefined;
}

async function readHead(db: Queryable): Promise<{ seq: number; hash: Buffer; chainId: string }> {
  const { rows } = await db.query<{ seq: string; hash: Buffer; chain_id: string }>(
    'SELECT seq::text AS seq, hash, chain_id::text AS chain_id FROM audit_head',
  );
  const r = rows[0];
  if (!r) throw new AuditIntegrityError('the audit head row is missing');
  return { seq: Number(r.seq), hash: r.hash, chainId: r.chain_id };
}

async function insertCheckpoint(client: PoolClient, cp: StoredCheckpoint, publicJwk: JWK): Promise<void> {
  await client.query('INSERT INTO audit_signing_keys (kid, public_jwk) VALUES ($1, $2) ON CONFLICT (kid) DO NOTHING', [
    cp.kid,
    JSON.stringify(publicJwk),
  ]);
  const stored = await client.query<{ public_jwk: JWK }>('SELECT public_jwk FROM audit_signing_keys WHERE kid = $1', [
    cp.kid,
  ]);
  if (stored.rows[0]?.public_jwk.x !== publicJwk.x) {
    throw new AuditIntegrityError(`audit_signing_keys holds a different public key for kid ${cp.kid}`);
  }
  await client.query(
    `INSERT INTO audit_checkpoints (checkpoint_seq, event_seq, head_hash, previous_checkpoint_hash,
       created_at, kid, jws, checkpoint_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      String(cp.checkpointSeq),
      String(cp.eventSeq),
      Buffer.from(cp.headHash, 'hex'),
      Buffer.from(cp.previousCheckpointHash, 'hex'),
      cp.createdAt,
      cp.kid,
      cp.jws,
      Buffer.from(cp.checkpointHash, 'hex'),
    ],
  );
}

function anchorLineOf(cp: StoredCheckpoint, publicJwk: JWK): AnchorLine {
  return {
    v: 1,
    chainId: cp.chainId,
    checkpointSeq: cp.checkpointSeq,
    eventSeq: cp.eventSeq,
    headHash: cp.headHash,
    kid: cp.kid,
    jws: cp.jws,
    publicJwk,
  };
}

/** Verifies events (from.seq, to.seq] link on from the trusted point and end in to.hash. */
async function verifySince(
  client: PoolClient,
  from: { seq: number; hash: Buffer },
  to: { seq: number; hash: Buffer },
): Promise<void> {
  const v = new ChainVerifier([], from);
  for await (const batch of readChainRows(client, { fromSeq: from.seq + 1, toSeq: to.seq, batchSize: 5000 })) {
    for (const row of batch) v.push(row);
    if (v.done) break;
  }
  const result = v.finish(to);
  if (!result.ok)
    throw new AuditIntegrityError(
      `the audit chain is broken at seq ${result.firstBrokenSeq}: ${result.reason}`,
      result.firstBrokenSeq,
    );
}

/**
 * Brings the anchor and the database into step before a new checkpoint: they must end at the same
 * checkpoint. One exception is repaired: the anchor one checkpoint ahead (the process died after
 * the fsync and before COMMIT) — that line is verified and stored in the database.
 */
async function reconcile(
  client: PoolClient,
  anchor: AuditAnchor,
  signer: AuditSigningKeySource,
  chainId: string,
  dbLast: StoredCheckpoint | undefined,
): Promise<StoredCheckpoint | undefined> {
  const anchorLast = await anchor.last();
  const dbSeq = dbLast?.checkpointSeq ?? 0;
  if (!anchorLast) {
    if (dbLast)
      throw new AuditIntegrityError(
        `the anchor ${anchor.description} holds no checkpoints, the database holds ${dbSeq}`,
      );
    return undefined;
  }
  if (anchorLast.chainId !== chainId) {
    throw new AuditIntegrityError(
      `the anchor ${anchor.description} belongs to another audit chain (${anchorLast.chainId}, ` +
        `this database: ${chainId})`,
    );
  }
  if (anchorLast.checkpointSeq === dbSeq) {
    if (dbLast && anchorLast.jws !== dbLast.jws)
      throw new AuditIntegrityError(`checkpoint ${dbSeq} differs between the anchor and the database`);
    return dbLast;
  }
  if (anchorLast.checkpointSeq !== dbSeq + 1) {
    throw new AuditIntegrityError(
      `the anchor ends at checkpoint ${anchorLast.checkpointSeq}, the database at ${dbSeq}`,
    );
  }
  const keys = new Map<string, KeyObject>();
  for (const k of await signer.verificationKeys()) keys.set(k.kid, publicKeyFromJwk(k.publicJwk));
  const verified = await verifyCheckpointJws(anchorLast.jws, keys);
  if ('error' in verified)
    throw new AuditIntegrityError(`anchored checkpoint ${anchorLast.checkpointSeq}: ${verified.error}`);
  const p = verified.payload;
  const expectedPrev = dbLast?.checkpointHash ?? CHECKPOINT_GENESIS_HASH;
  if (
    p.checkpointSeq !== anchorLast.checkpointSeq ||
    p.previousCheckpointHash !== expectedPrev ||
    p.chainId !== chainId
  ) {
    throw new AuditIntegrityError(
      `anchored checkpoint ${anchorLast.checkpointSeq} does not follow checkpoint ${dbSeq}`,
    );
  }
  const from = { seq: dbLast?.eventSeq ?? 0, hash: Buffer.from(dbLast?.headHash ?? CHECKPOINT_GENESIS_HASH, 'hex') };
  await verifySince(client, from, { seq: p.eventSeq, hash: Buffer.from(p.headHash, 'hex') });
  const recovered: StoredCheckpoint = { ...p, jws: anchorLast.jws, checkpointHash: checkpointHashOf(anchorLast.jws) };
  const publicJwk = (await signer.verificationKeys()).find((k) => k.kid === p.kid)?.publicJwk;
  await insertCheckpoint(client, recovered, publicEd25519Jwk(publicJwk ?? anchorLast.publicJwk));
  return recovered;
}

const CHECKPOINT_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('ehr-connectors:audit-checkpoints', 0))";

export interface WriteCheckpointOptions {
  /** Sign even when no event was added since the last checkpoint (a fresh timestamp). */
  force?: boolean;
  now?: () => Date;
}

/**
 * Writes the next checkpoint over the current head: verifies the events since the previous one,
 * signs, inserts into `audit_checkpoints`, appends to the anchor (fsynced) and only then commits. If
 * the anchor append fails nothing is committed. Returns undefined when nothing changed since the last
 * checkpoint (unless `force`). Concurrent writers serialise on an advisory lock.
 */
export async function writeCheckpoint(
  pool: Pool,
  signer: AuditSigningKeySource,
  anchor: AuditAnchor,
  opts: WriteCheckpointOptions = {},
): Promise<StoredCheckpoint | undefined> {
  try {
    return await withTransaction(pool, async (client) => {
      await client.query(CHECKPOINT_LOCK_SQL);
      const head = await readHead(client);
      const last = await reconcile(client, anchor, signer, head.chainId, await lastCheckpoint(client));
      const lastEventSeq = last?.eventSeq ?? 0;
      if (head.seq < lastEventSeq) {
        throw new AuditIntegrityError(
          `the head (seq ${head.seq}) is behind checkpoint ${last?.checkpointSeq} (seq ${lastEventSeq})`,
          head.seq + 1,
        );
      }
      if (last && head.seq === lastEventSeq && !opts.force) return undefined;
      const from = { seq: lastEventSeq, hash: Buffer.from(last?.headHash ?? CHECKPOINT_GENESIS_HASH, 'hex') };
      await verifySince(client, from, head);

      const key = await signer.current();
      const publicJwk = publicEd25519Jwk(key.publicJwk);
      const payload: CheckpointPayload = {
        chainId: head.chainId,
        checkpointSeq: (last?.checkpointSeq ?? 0) + 1,
        eventSeq: head.seq,
        headHash: head.hash.toString('hex'),
        previousCheckpointHash: last?.checkpointHash ?? CHECKPOINT_GENESIS_HASH,
        createdAt: (opts.now?.() ?? new Date()).toISOString(),
        kid: key.kid,
      };
      const jws = await signCheckpoint(payload, key.privateKey);
      const cp: StoredCheckpoint = { ...payload, jws, checkpointHash: checkpointHashOf(jws) };
      await insertCheckpoint(client, cp, publicJwk);
      await anchor.append(anchorLineOf(cp, publicJwk));
      return cp;
    });
  } catch (err) {
    if (err instanceof EhrError) throw err;
    const code =
      typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
    throw new AuditWriteError(
      'audit.checkpoint',
      code ? `database or anchor error ${code}` : ((err as Error)?.message ?? 'unknown error'),
    );
  }
}
