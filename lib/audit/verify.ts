/**
 * Verifies the audit trail (DESIGN §4 invariant 6, §6 "Audit anchors"), streaming the events in seq
 * order in batches (constant memory; millions of rows) inside one REPEATABLE READ snapshot.
 *
 * `verifyAuditChain` (lib/audit/verify-chain.ts): the hash chain alone.
 *
 * `verifyAuditTrail`: the chain plus the signed checkpoints and the anchor kept outside the
 * database — every checkpoint's Ed25519 signature, the checkpoints' own chain, the anchor's lines
 * equal to the database's checkpoints, and every anchored head hash equal to the recomputed chain at
 * its seq. That is what catches a truncated tail (with the head moved back too) and a chain rebuilt
 * with recomputed hashes, which a hash chain alone cannot. The rules and the sequence number each
 * reports are in chain-verifier.ts (the same code the property tests drive in memory).
 */
import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type { Pool } from '../store/pool.js';
import type { AuditAnchor, ReadAnchorLine } from './anchor.js';
import { FileAuditAnchor } from './anchor.js';
import type { AnchoredHead } from './chain-verifier.js';
import { listCheckpoints } from './checkpoint.js';
import type { CheckpointPayload, StoredCheckpoint } from './checkpoint-jws.js';
import { CHECKPOINT_GENESIS_HASH, checkpointHashOf, publicKeyFromJwk, verifyCheckpointJws } from './checkpoint-jws.js';
import { checkBatchSize, inSnapshot, readHead, readPurgeBoundary, unsignedBoundary, walk } from './verify-chain.js';
import type { AuditVerification } from './verify-chain.js';

export type { AuditVerification };

export interface CheckpointProblem {
  /** The checkpoint concerned, when known. */
  checkpointSeq?: number;
  /** The anchor line concerned (1-based), when the problem is in the anchor. */
  anchorLine?: number;
  reason: string;
}

export interface AuditTrailVerification extends AuditVerification {
  /** Checkpoints in the database. */
  checkpoints: number;
  /** Retention purged every event up to this seq (whole segments); the chain is verified from there. */
  purgedThroughSeq?: number;
  /** Lines in the anchor; null when the anchor does not exist. */
  anchorLines: number | null;
  anchor: string;
  /** The newest checkpoint whose signature verified and which the chain matches, if any. */
  lastCheckpoint?: { checkpointSeq: number; eventSeq: number; createdAt: string };
  /** Where the verification keys came from. */
  keySource: 'purpose-keys' | 'anchor' | 'database' | 'none';
  /** Problems with the checkpoints or the anchor (not with individual events), first first. */
  checkpointProblems: CheckpointProblem[];
  /** Elapsed milliseconds, for throughput figures. */
  elapsedMs: number;
}

export interface VerifyAuditTrailOptions {
  anchorPath?: string;
  anchor?: AuditAnchor;
  /** Trusted public keys (from the purpose-key source). Without them, the anchor's keys, then the database's. */
  verificationKeys?: Array<{ kid: string; publicJwk: JWK }>;
  batchSize?: number;
}

const MAX_PROBLEMS = 50;

function jwkX(jwk: unknown): string | undefined {
  return typeof jwk === 'object' && jwk !== null && typeof (jwk as JWK).x === 'string' ? (jwk as JWK).x : undefined;
}

export async function verifyAuditTrail(pool: Pool, opts: VerifyAuditTrailOptions): Promise<AuditTrailVerification> {
  const t0 = performance.now();
  const batchSize = opts.batchSize ?? 2000;
  checkBatchSize(batchSize);
  const anchor = opts.anchor ?? (opts.anchorPath !== undefined ? new FileAuditAnchor(opts.anchorPath) : undefined);
  if (!anchor) throw new RangeError('verifyAuditTrail needs an anchor or an anchorPath');
  const lines: ReadAnchorLine[] | undefined = await anchor.readAll();

  return inSnapshot(pool, async (client) => {
    const problems: CheckpointProblem[] = [];
    const problem = (p: CheckpointProblem) => {
      if (problems.length < MAX_PROBLEMS) problems.push(p);
    };
    const head = await readHead(client);
    const base = { anchor: anchor.description, anchorLines: lines ? lines.length : null };
    if (!head) {
      return {
        ok: false,
        eventsChecked: 0,
        headSeq: 0,
        firstBrokenSeq: 1,
        reason: 'audit head row is missing',
        checkpoints: 0,
        keySource: 'none',
        checkpointProblems: [],
        elapsedMs: performance.now() - t0,
        ...base,
      };
    }
    const dbCheckpoints = await listCheckpoints(client);
    const dbKeys = await client.query<{ kid: string; public_jwk: JWK }>(
      'SELECT kid, public_jwk FROM audit_signing_keys ORDER BY kid',
    );

    // Trusted keys: the purpose-key source; else the anchor's; else the database's. Disagreements are problems.
    const keys = new Map<string, KeyObject>();
    const keyX = new Map<string, string>();
    let keySource: AuditTrailVerification['keySource'] = 'none';
    const addKey = (kid: string, jwk: JWK, source: string): void => {
      const x = jwkX(jwk);
      const known = keyX.get(kid);
      if (known !== undefined) {
        if (known !== x) problem({ reason: `the ${source} holds a different public key for kid ${kid}` });
        return;
      }
      try {
        keys.set(kid, publicKeyFromJwk(jwk));
        keyX.set(kid, x ?? '');
      } catch {
        problem({ reason: `the ${source} holds an unusable public key for kid ${kid}` });
      }
    };
    if (opts.verificationKeys) {
      keySource = 'purpose-keys';
      for (const k of opts.verificationKeys) addKey(k.kid, k.publicJwk, 'purpose-key source');
    }
    for (const l of lines ?? [])
      if ('entry' in l) {
        if (keySource === 'none') keySource = 'anchor';
        if (opts.verificationKeys && !keys.has(l.entry.kid)) continue; // reported when its signature is checked
        addKey(l.entry.kid, l.entry.publicJwk, `anchor (line ${l.line})`);
      }
    for (const k of dbKeys.rows) {
      if (keySource === 'none') keySource = 'database';
      if (opts.verificationKeys && !keys.has(k.kid)) continue;
      addKey(k.kid, k.public_jwk, 'database');
    }

    // The anchor: well-formed, signed, contiguous, chained, this chain, lines equal to their payloads.
    const anchored = new Map<number, { jws: string; payload: CheckpointPayload }>();
    const trusted: AnchoredHead[] = [];
    let lastTrusted: { checkpointSeq: number; eventSeq: number; createdAt: string } | undefined;
    let prevHash = CHECKPOINT_GENESIS_HASH;
    let prevEventSeq = 0;
    let expectedCp = 1;
    if (!lines) {
      if (dbCheckpoints.length > 0)
        problem({
          reason:
            `the anchor ${anchor.description} does not exist, ` +
            `the database holds ${dbCheckpoints.length} checkpoints`,
        });
    } else {
      for (const l of lines) {
        if ('error' in l) {
          problem({ anchorLine: l.line, reason: `anchor line ${l.line} is ${l.error}` });
          continue;
        }
        const e = l.entry;
        const at = { anchorLine: l.line, checkpointSeq: e.checkpointSeq };
        const verified = await verifyCheckpointJws(e.jws, keys);
        if ('error' in verified) {
          problem({ ...at, reason: `anchored checkpoint ${e.checkpointSeq} (line ${l.line}): ${verified.error}` });
          continue;
        }
        const p = verified.payload;
        if (p.chainId !== head.chainId) {
          problem({
            ...at,
            reason:
              `anchor line ${l.line} belongs to another audit chain (${p.chainId}; ` +
              `this database: ${head.chainId ?? 'none'})`,
          });
          continue;
        }
        if (
          e.checkpointSeq !== p.checkpointSeq ||
          e.eventSeq !== p.eventSeq ||
          e.headHash !== p.headHash ||
          e.kid !== p.kid ||
          e.chainId !== p.chainId
        ) {
          problem({ ...at, reason: `anchor line ${l.line} was altered: its fields differ from its signed payload` });
        }
        if (p.checkpointSeq !== expectedCp) {
          problem({
            ...at,
            reason:
              `anchor line ${l.line} holds checkpoint ${p.checkpointSeq}, ` +
              `expected ${expectedCp}: anchor lines are missing or out of order`,
          });
        } else if (p.previousCheckpointHash !== prevHash) {
          problem({
            ...at,
            reason: `anchored checkpoint ${p.checkpointSeq} does not chain to checkpoint ${p.checkpointSeq - 1}`,
          });
        } else if (p.eventSeq < prevEventSeq) {
          problem({
            ...at,
            reason: `anchored checkpoint ${p.checkpointSeq} covers fewer events than checkpoint ${p.checkpointSeq - 1}`,
          });
        }
        expectedCp = p.checkpointSeq + 1;
        prevHash = checkpointHashOf(e.jws);
        prevEventSeq = p.eventSeq;
        if (!anchored.has(p.checkpointSeq)) anchored.set(p.checkpointSeq, { jws: e.jws, payload: p });
        trusted.push({
          checkpointSeq: p.checkpointSeq,
          eventSeq: p.eventSeq,
          headHash: Buffer.from(p.headHash, 'hex'),
        });
      }
    }

    // The database's checkpoints: signed, equal to their columns, equal to the anchor, none missing.
    const inDb = new Set<number>();
    let expectedDb = 1;
    for (const cp of dbCheckpoints) {
      inDb.add(cp.checkpointSeq);
      const at = { checkpointSeq: cp.checkpointSeq };
      if (cp.checkpointSeq !== expectedDb && !lines) {
        // With an anchor, a missing one is reported below, against the anchor.
        for (let k = expectedDb; k < cp.checkpointSeq && k < expectedDb + 5; k++)
          problem({ checkpointSeq: k, reason: `checkpoint ${k} is missing from the database` });
      }
      expectedDb = cp.checkpointSeq + 1;
      const verified = await verifyCheckpointJws(cp.jws, keys);
      if ('error' in verified) {
        problem({ ...at, reason: `database checkpoint ${cp.checkpointSeq}: ${verified.error}` });
        continue;
      }
      const p = verified.payload;
      if (!sameColumns(cp, p) || checkpointHashOf(cp.jws) !== cp.checkpointHash) {
        problem({
          ...at,
          reason: `database checkpoint ${cp.checkpointSeq} was altered: its columns differ from its signed payload`,
        });
      }
      if (lines) {
        const a = anchored.get(cp.checkpointSeq);
        if (!a) problem({ ...at, reason: `checkpoint ${cp.checkpointSeq} is in the database but not in the anchor` });
        else if (a.jws !== cp.jws)
          problem({ ...at, reason: `checkpoint ${cp.checkpointSeq} differs between the database and the anchor` });
      } else if (p.chainId === head.chainId) {
        // No anchor: the database's signed checkpoints are the best evidence there is.
        trusted.push({
          checkpointSeq: p.checkpointSeq,
          eventSeq: p.eventSeq,
          headHash: Buffer.from(p.headHash, 'hex'),
        });
      }
    }
    for (const k of anchored.keys()) {
      if (!inDb.has(k))
        problem({ checkpointSeq: k, reason: `checkpoint ${k} is in the anchor but missing from the database` });
    }

    // After retention purged the oldest segments, the kept chain starts after a signed checkpoint.
    const boundary = await readPurgeBoundary(client);
    const unsigned = boundary && unsignedBoundary(boundary, trusted);
    if (unsigned) problem(unsigned);
    const chain = await walk(client, trusted, head, batchSize, boundary);
    if (chain.ok) {
      const best = trusted.reduce<AnchoredHead | undefined>(
        (m, c) => (!m || c.checkpointSeq > m.checkpointSeq ? c : m),
        undefined,
      );
      if (best) {
        const p = anchored.get(best.checkpointSeq)?.payload;
        lastTrusted = {
          checkpointSeq: best.checkpointSeq,
          eventSeq: best.eventSeq,
          createdAt: p?.createdAt ?? dbCheckpoints.find((c) => c.checkpointSeq === best.checkpointSeq)?.createdAt ?? '',
        };
      }
    }
    problems.sort((a, b) => (a.checkpointSeq ?? 0) - (b.checkpointSeq ?? 0));
    const result: AuditTrailVerification = {
      ok: chain.ok && problems.length === 0,
      eventsChecked: chain.eventsChecked,
      headSeq: head.seq,
      ...(chain.ok ? {} : { firstBrokenSeq: chain.firstBrokenSeq, reason: chain.reason }),
      checkpoints: dbCheckpoints.length,
      ...(boundary ? { purgedThroughSeq: boundary.seq } : {}),
      ...base,
      ...(lastTrusted ? { lastCheckpoint: lastTrusted } : {}),
      keySource,
      checkpointProblems: problems,
      elapsedMs: performance.now() - t0,
    };
    if (chain.ok && problems.length > 0) result.reason = problems[0]!.reason;
    return result;
  });
}

function sameColumns(cp: StoredCheckpoint, p: CheckpointPayload): boolean {
  return (
    cp.checkpointSeq === p.checkpointSeq &&
    cp.eventSeq === p.eventSeq &&
    cp.headHash === p.headHash &&
    cp.previousCheckpointHash === p.previousCheckpointHash &&
    cp.kid === p.kid &&
    Date.parse(cp.createdAt) === Date.parse(p.createdAt)
  );
}
