/**
 * Who sent a webhook delivery, proven before anything about the named integration is revealed. An
 * unknown integration, one without a usable secret and a wrong signature end the same way for the
 * sender (401 with the verifier's reason) and take the same steps: the same two queries, and HMACs
 * against at least MIN_CANDIDATES secrets — padded with per-process random ones that no sender can
 * know — so neither the answer nor the work done says whether the integration exists. What really
 * happened goes to the audit row only. The caller adds a response-time floor on top
 * (workers/webhook-receiver.ts) for what cannot be equalised here: reading the secrets themselves.
 */
import { randomBytes } from 'node:crypto';
import { ID_PATTERN } from '../domain.js';
import type { Pool } from '../store/pool.js';
import { readStoredSecretPolicy } from '../store/secret-roots.js';
import type { DeliveryTarget, Refusal } from './deliveries.js';
import { findWebhookIntegration } from './deliveries.js';
import { listWebhookSecrets, resolveWebhookSecret } from './secrets.js';
import type { WebhookHeaders } from './verify.js';
import { verifyWebhook } from './verify.js';

/** At most two secrets are accepted at once (current, and previous during a rotation's window). */
const MIN_CANDIDATES = 2;
const DECOYS = Array.from({ length: MIN_CANDIDATES }, () => randomBytes(32));

export type DeliveryAuthentication =
  | { ok: true; target: DeliveryTarget; integrationStatus: string; verifiedWith: 'current' | 'previous' }
  | { ok: false; refusal: Refusal };

interface AcceptedSecret {
  state: 'current' | 'previous';
  bytes: Buffer;
}

/** Accepted secrets, current first; a reference that cannot be resolved is left out and counted. */
async function acceptedSecrets(
  db: Pool,
  integrationId: string,
  known: boolean,
): Promise<{ secrets: AcceptedSecret[]; unresolvable: number }> {
  // Listed (and the stored-reference policy read) for unknown ids too: the same queries either way.
  const [listed, policy] = await Promise.all([listWebhookSecrets(db, integrationId), readStoredSecretPolicy(db)]);
  if (!known) return { secrets: [], unresolvable: 0 };
  const live = listed
    .filter((s) => s.state !== 'retired')
    .sort((a, b) => (a.state === 'current' ? -1 : b.state === 'current' ? 1 : b.version - a.version));
  const resolved = await Promise.all(
    live.map(async (s) => {
      try {
        // Checked against the secret roots at every use; a refused reference is audited there.
        const bytes = await resolveWebhookSecret(db, s, { policy });
        return { state: s.state as AcceptedSecret['state'], bytes };
      } catch {
        return undefined;
      }
    }),
  );
  const secrets = resolved.filter((s): s is AcceptedSecret => s !== undefined);
  return { secrets, unresolvable: resolved.length - secrets.length };
}

export async function authenticateDelivery(
  db: Pool,
  claimedIntegrationId: string,
  headers: WebhookHeaders,
  body: Buffer,
  opts: { nowSeconds?: number } = {},
): Promise<DeliveryAuthentication> {
  const wellFormed = ID_PATTERN.test(claimedIntegrationId);
  const integration = wellFormed ? await findWebhookIntegration(db, claimedIntegrationId) : undefined;
  const { secrets, unresolvable } = wellFormed
    ? await acceptedSecrets(db, claimedIntegrationId, integration !== undefined)
    : { secrets: [], unresolvable: 0 };
  const candidates = [...secrets.map((s) => s.bytes), ...DECOYS].slice(0, Math.max(MIN_CANDIDATES, secrets.length));
  const verdict = verifyWebhook(headers, body, candidates, opts);
  if (integration && verdict.ok && verdict.secretIndex < secrets.length) {
    const { status, ...target } = integration;
    return { ok: true, target, integrationStatus: status, verifiedWith: secrets[verdict.secretIndex]!.state };
  }
  const answerReason = verdict.ok ? 'no-matching-signature' : verdict.reason;
  if (!integration) {
    const details = { signatureCheck: answerReason, ...(wellFormed ? { claimedIntegrationId } : {}) };
    return { ok: false, refusal: { status: 401, reason: 'unknown-integration', answerReason, details } };
  }
  const { status: _status, ...target } = integration;
  if (secrets.length === 0) {
    const reason = unresolvable > 0 ? 'webhook-secret-unresolvable' : 'no-webhook-secret';
    return {
      ok: false,
      refusal: { status: 401, reason, answerReason, target, details: { signatureCheck: answerReason } },
    };
  }
  const details = unresolvable > 0 ? { details: { unresolvableSecrets: unresolvable } } : {};
  return { ok: false, refusal: { status: 401, reason: answerReason, target, ...details } };
}
