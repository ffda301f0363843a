/**
 * What `ehrctl keys status` shows, read in one place: every KEK version with its state and floor, each
 * tenant's DEK versions by status and the KEK version wrapping its pseudonym key, the payload keys,
 * each integration's signing keys and webhook secret versions, and the last rotation of each kind and
 * scope (from the audit trail). Identifiers, versions and states only: no key material.
 */
import type { Queryable } from '../store/pool.js';

export async function keyStatus(db: Queryable) {
  const kek = await db.query<{
    kek_id: string;
    version: number;
    state: string;
    floor: number;
    destroy_after: Date | null;
  }>(
    `SELECT v.kek_id, v.version, v.state, k.min_decryption_version AS floor, v.destroy_after
        FROM kek_versions v JOIN kek_keys k USING (kek_id) ORDER BY v.kek_id, v.version`,
  );
  // Per tenant: DEK versions by status, and the pseudonym key's KEK version (null until first stored).
  const deks = await db.query<{
    tenant_id: string;
    primary: number | null;
    decrypt_only: number[];
    destroyed: number[];
    psk_kek: string | null;
    psk_status: string | null;
  }>(
    `SELECT d.tenant_id, d.primary, d.decrypt_only, d.destroyed,
            p.kek_id || ' v' || p.kek_version AS psk_kek, p.status AS psk_status
       FROM (SELECT tenant_id, max(key_version) FILTER (WHERE status = 'primary') AS primary,
                    coalesce(array_agg(key_version ORDER BY key_version) FILTER (WHERE status = 'decrypt_only'),
                             '{}') AS decrypt_only,
                    coalesce(array_agg(key_version ORDER BY key_version) FILTER (WHERE status = 'destroyed'),
                             '{}') AS destroyed
               FROM data_keys GROUP BY tenant_id) d
       LEFT JOIN tenant_purpose_keys p ON p.tenant_id = d.tenant_id AND p.purpose = 'pseudonym'
      ORDER BY d.tenant_id`,
  );
  const payload = await db.query<{ key_id: string; status: string }>(
    `SELECT key_id, status FROM purpose_keys WHERE purpose = 'payload' ORDER BY version`,
  );
  // Per integration: signing keys (kid by state; retired ones counted) and webhook secret versions by state.
  const signing = await db.query<{
    integration_id: string;
    current: string | null;
    successor: string | null;
    previous: string | null;
    retired: number;
  }>(
    `SELECT integration_id,
            max(kid) FILTER (WHERE state = 'current') AS current,
            max(kid) FILTER (WHERE state = 'successor') AS successor,
            max(kid) FILTER (WHERE state = 'previous') AS previous,
            count(*) FILTER (WHERE state = 'retired')::int AS retired
       FROM integration_signing_keys GROUP BY integration_id ORDER BY integration_id`,
  );
  const webhooks = await db.query<{
    integration_id: string;
    current: number | null;
    previous: number | null;
    retired: number;
  }>(
    `SELECT integration_id,
            max(version) FILTER (WHERE state = 'current') AS current,
            max(version) FILTER (WHERE state = 'previous') AS previous,
            count(*) FILTER (WHERE state = 'retired')::int AS retired
       FROM webhook_secrets GROUP BY integration_id ORDER BY integration_id`,
  );
  const last = await db.query<{ kind: string; scope: string; action: string; occurred_at: Date }>(
    `SELECT DISTINCT ON (details->>'kind', details->>'scope')
            details->>'kind' AS kind, details->>'scope' AS scope, action, occurred_at
       FROM audit_events WHERE action IN ('key.rotation.completed', 'key.rotation.rolled_back')
      ORDER BY details->>'kind', details->>'scope', seq DESC`,
  );
  return {
    kek: kek.rows.map((r) => ({
      kekId: r.kek_id,
      version: r.version,
      state: r.state,
      floor: r.floor,
      destroyAfter: r.destroy_after?.toISOString() ?? null,
    })),
    tenantKeys: deks.rows.map((r) => ({
      tenantId: r.tenant_id,
      primary: r.primary,
      decryptOnly: r.decrypt_only,
      destroyed: r.destroyed,
      pseudonymKey: r.psk_status === null ? null : r.psk_status === 'destroyed' ? 'destroyed' : r.psk_kek,
    })),
    payloadKeys: payload.rows.map((r) => ({ keyId: r.key_id, status: r.status })),
    signingKeys: signing.rows.map((r) => ({
      integrationId: r.integration_id,
      current: r.current,
      successor: r.successor,
      previous: r.previous,
      retired: r.retired,
    })),
    webhookSecrets: webhooks.rows.map((r) => ({
      integrationId: r.integration_id,
      current: r.current,
      previous: r.previous,
      retired: r.retired,
    })),
    lastRotations: last.rows.map((r) => ({
      kind: r.kind,
      scope: r.scope,
      outcome: r.action === 'key.rotation.completed' ? 'completed' : 'rolled-back',
      at: r.occurred_at.toISOString(),
    })),
  };
}
