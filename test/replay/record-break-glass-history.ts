/**
 * Records a break-glass review history for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-break-glass-history.ts
 * A grant (the alert at once, no hook configured), the reminder and the escalation on short timers, the
 * requester's own review refused by the validator (not in the history), then a second person's review.
 */
import { randomUUID } from 'node:crypto';
import { requestBreakGlass, reviewBreakGlass } from '../../client/break-glass-client.js';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { getBreakGlassGrant } from '../../lib/gateway/break-glass.js';
import { addConsumer } from '../../lib/gateway/consumers.js';
import { createTenant } from '../../lib/store/tenants.js';
import { runRecorder, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };
const REASON = 'replay recording (synthetic)';

async function main(): Promise<void> {
  const { pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-break-glass',
    sandboxSeed: 96,
    sandboxSize: 10,
  });
  try {
    // Break-glass is granted to a registered gateway consumer.
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    const { publicKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk, 'sha256');
    await addConsumer(
      pool,
      {
        id: 'replay-consumer',
        tenantId: 'replay',
        purpose: 'clinical-sync',
        scopes: 'system/Patient.rs',
        keys: { kind: 'jwks', jwks: { keys: [{ ...jwk, kid, alg: 'ES384', use: 'sig' }] } },
      },
      actor,
    );
    const grant = await requestBreakGlass(
      pool,
      client,
      { ...config, EHR_BREAK_GLASS_REMIND_SECONDS: 1, EHR_BREAK_GLASS_ESCALATE_SECONDS: 2 },
      {
        consumerId: 'replay-consumer',
        scope: 'system/Observation.rs system/Condition.r',
        reasonCode: 'patient-safety',
        reason: REASON,
        minutes: 15,
        requestedBy: 'requester@replay',
      },
      actor,
    );
    for (let i = 0; (await getBreakGlassGrant(pool, grant.id)).escalatedAt === null; i++) {
      if (i > 600) throw new Error('the review was not escalated');
      await new Promise((r) => setTimeout(r, 100));
    }
    const review = { verdict: 'appropriate' as const, note: 'replay review' };
    const own = await reviewBreakGlass(pool, client, grant.id, { ...review, by: 'requester@replay' }, actor).then(
      () => undefined,
      (err: unknown) => err,
    );
    if (!own) throw new Error("the requester's own review was accepted");
    await reviewBreakGlass(pool, client, grant.id, { ...review, by: 'reviewer@replay' }, actor);
    const handle = client.workflow.getHandle(grant.reviewWorkflowId);
    await handle.result();
    await writeHistory('break-glass-review', handle, [REASON]);
  } finally {
    await close();
  }
}

runRecorder(main);
