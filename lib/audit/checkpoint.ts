/**
 * Signed checkpoints over the audit chain (Certificate Transparency signed tree heads / CloudTrail
 * digests): checkpoint N says "the chain had eventSeq events and its head hash was headHash", chains
 * to checkpoint N-1 by hash, and is a compact Ed25519 JWS. Each one is stored in `audit_checkpoints`
 * AND appended to an anchor outside the database (anchor.ts). A hash chain alone cannot show that its
 * tail was cut off or that it was rebuilt from scratch; a signed head kept elsewhere can.
 *
 * Before signing, the events since the previous checkpoint are verified, so a checkpoint never
 * launders a tampered tail. Checkpoints are not audit events: they are a chain of their own.
 */
import { createHash, createPublicKey } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import canonicalize from 'canonicalize';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import type { JWK } from 'jose';
import { AuditWriteError, EhrError } from '../errors/index.js';
import type { AuditSigningKeySource } from '../keys/purpose-keys.js';
import type { Pool, PoolClient, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { AnchorLine, AuditAnchor } from './anchor.js';
import { ChainVerifier } from './chain-verifier.js';
import { readChainRows } from './rows.js';

export const CHECKPOINT_JWS_TYPE = 'ehr-audit-checkpoint+jws';
export const CHECKPOINT_GENESIS_HASH = '0'.repeat(64);

export interface CheckpointPayload {
  chainId: string;
  checkpointSeq: number;
  /** The chain's size: events 1..eventSeq are covered. */
  eventSeq: number;
  /** Hex of the hash of event eventSeq (the genesis hash for an empty chain). */
  headHash: string;
  /** Hex SHA-256 of the previous checkpoint's compact JWS; zeros for the first. */
  previousCheckpointHash: string;
  createdAt: string;
  kid: string;
}

export interface StoredCheckpoint extends CheckpointPayload {
  jws: string;
  /** Hex SHA-256 of `jws`. */
  checkpointHash: string;
}

/** Raised when the chain or the anchor is not in a state a checkpoint may be signed over. */
export class AuditIntegrityError extends EhrError {
  readonly code = 'AUDIT_INTEGRITY';
  readonly retryable = false;
  constructor(
    readonly reason: string,
    readonly firstBrokenSeq?: number,
  ) {
    super(`audit checkpoint refused: ${reason}`);
  }
}

export function checkpointHashOf(jws: string): string {
  return createHash('sha256').update(jws, 'ascii').digest('hex');
}

/** Only the public members of an Ed25519 JWK (a private `d` never reaches the database or the anchor). */
export function publicEd25519Jwk(jwk: JWK): JWK {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new AuditIntegrityError('the audit signing key is not an Ed25519 key');
  }
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
}

export function publicKeyFromJwk(jwk: JWK): KeyObject {
  return createPublicKey({ key: publicEd25519Jwk(jwk) as JsonWebKey, format: 'jwk' });
}

export async function signCheckpoint(payload: CheckpointPayload, privateKey: KeyObject): Promise<string> {
  const body = canonicalize(payload);
  if (body === undefined) throw new AuditIntegrityError('checkpoint payload cannot be canonicalised');
  return new CompactSign(Buffer.from(body, 'utf8'))
    .setProtectedHeader({ alg: 'EdDSA', kid: payload.kid, typ: CHECKPOINT_JWS_TYPE })
    .sign(privateKey);
}

const HEX64 = /^[0-9a-f]{64}$/;

function isPayload(v: unknown): v is CheckpointPayload {
  const p = v as Partial<CheckpointPayload> | null;
  return (
    !!p &&
    typeof p === 'object' &&
    typeof p.chainId === 'string' &&
    Number.isSafeInteger(p.checkpointSeq) &&
    (p.checkpointSeq ?? 0) > 0 &&
    Number.isSafeInteger(p.eventSeq) &&
    (p.eventSeq ?? -1) >= 0 &&
    typeof p.headHash === 'string' &&
    HEX64.test(p.headHash) &&
    typeof p.previousCheckpointHash === 'string' &&
    HEX64.test(p.previousCheckpointHash) &&
    typeof p.createdAt === 'string' &&
    typeof p.kid === 'string'
  );
}

/** Verifies a checkpoint JWS against trusted keys by kid; the payload, or why it is not trustworthy. */
export async function verifyCheckpointJws(
  jws: string,
  keys: ReadonlyMap<string, KeyObject>,
): Promise<{ payload: CheckpointPayload } | { error: string }> {
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(jws);
    if (header.alg !== 'EdDSA') return { error: `unexpected JWS alg ${String(header.alg)}` };
    if (header.typ !== CHECKPOINT_JWS_TYPE) return { error: 'not a checkpoint JWS' };
    kid = header.kid;
  } catch {
    return { error: 'malformed JWS' };
  }
  const key = kid === undefined ? undefined : keys.get(kid);
  if (!key) return { error: `signed by unknown key ${kid === undefined ? '(no kid)' : JSON.stringify(kid)}` };
  let payload: unknown;
  try {
    const verified = await compactVerify(jws, key, { algorithms: ['EdDSA'] });
    payload = JSON.parse(Buffer.from(verified.payload).toString('utf8'));
  } catch {
    return { error: 'signature does not verify' };
  }
  if (!isPayload(payload)) return { error: 'payload is not a checkpoint' };
  if (payload.kid !== kid) return { error: 'payload kid differs from the JWS header kid' };
  return { payload };
}

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

export interface CheckpointPolicy {
  /** Checkpoint once this many events were added since the last checkpoint. */
  everyEvents: number;
  /** ...or once the last checkpoint is this old and there is anything new. */
  everySeconds: number;
  now?: () => Date;
}

/** What the policy says now, without writing. */
export async function checkpointDue(db: Queryable, policy: CheckpointPolicy): Promise<boolean> {
  const now = (policy.now?.() ?? new Date()).getTime();
  const { rows } = await db.query<{
    head_seq: string;
    cp_seq: string | null;
    cp_at: Date | null;
    first_at: Date | null;
  }>(
    `SELECT (SELECT seq::text FROM audit_head) AS head_seq,
            (SELECT event_seq::text FROM audit_checkpoints ORDER BY audit_checkpoints.checkpoint_seq DESC
              LIMIT 1) AS cp_seq,
            (SELECT created_at FROM audit_checkpoints ORDER BY audit_checkpoints.checkpoint_seq DESC LIMIT 1) AS cp_at,
            (SELECT occurred_at FROM audit_events WHERE seq = 1) AS first_at`,
  );
  const r = rows[0];
  if (!r) return false;
  const headSeq = Number(r.head_seq);
  const cpSeq = Number(r.cp_seq ?? 0);
  if (headSeq <= cpSeq) return false;
  if (headSeq - cpSeq >= policy.everyEvents) return true;
  const since = (r.cp_at ?? r.first_at)?.getTime() ?? now;
  return now - since >= policy.everySeconds * 1000;
}

/** Writes a checkpoint when the policy says one is due (every N events or T seconds). */
export async function maybeCheckpoint(
  pool: Pool,
  signer: AuditSigningKeySource,
  anchor: AuditAnchor,
  policy: CheckpointPolicy,
): Promise<StoredCheckpoint | undefined> {
  if (!(await checkpointDue(pool, policy))) return undefined;
  return writeCheckpoint(pool, signer, anchor, { now: policy.now });
}

export interface CheckpointSchedulerOptions extends CheckpointPolicy {
  pool: Pool;
  signer: AuditSigningKeySource;
  anchor: AuditAnchor;
  /** How often the policy is evaluated; default min(5 s, everySeconds). */
  pollMs?: number;
  onCheckpoint?: (cp: StoredCheckpoint) => void;
  /** Failures never stop the scheduler; they are reported here (log them: AuditIntegrityError means tampering). */
  onError?: (err: unknown) => void;
}

/** Runs `maybeCheckpoint` on an interval in the worker; `stop()` waits for a tick in progress. */
export class CheckpointScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: CheckpointSchedulerOptions) {}

  start(): void {
    if (this.timer) return;
    const pollMs = this.opts.pollMs ?? Math.min(5_000, this.opts.everySeconds * 1000);
    this.timer = setInterval(() => void this.tick(), pollMs);
    this.timer.unref();
  }

  /** One evaluation now (also used by tests); overlapping ticks are skipped. */
  async tick(): Promise<StoredCheckpoint | undefined> {
    if (this.running) return undefined;
    let result: StoredCheckpoint | undefined;
    this.running = (async () => {
      try {
        result = await maybeCheckpoint(this.opts.pool, this.opts.signer, this.opts.anchor, this.opts);
        if (result) this.opts.onCheckpoint?.(result);
      } catch (err) {
        this.opts.onError?.(err);
      }
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
    return result;
  }

  /** Stops the interval; with `final`, writes a last checkpoint if anything is new (clean shutdown). */
  async stop(opts: { final?: boolean } = {}): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    if (opts.final) {
      try {
        const cp = await writeCheckpoint(this.opts.pool, this.opts.signer, this.opts.anchor, { now: this.opts.now });
        if (cp) this.opts.onCheckpoint?.(cp);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
  }
}
