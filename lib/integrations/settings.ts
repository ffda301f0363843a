/**
 * An integration's compensating controls as its own settings (migrations/1733200002000): the sync
 * interval `ehrctl schedule nightly` uses by default, and how often its client secret must be
 * replaced. Set at registration from the vendor profile (integrationDefaults); changed only with a
 * reason, audited. Audit retention is not a setting: nothing in the product deletes audit rows.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { SYNC_INTERVAL_HOURS, integrationDefaults } from '../vendors/profiles/compensating.js';
import { profileFor } from '../vendors/profiles/index.js';
import type { Integration, SettingsOverrides } from './repository.js';
import { getIntegration, listIntegrations } from './repository.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';

const DAY_MS = 24 * 3600 * 1000;

export type SettingSource = 'registration' | 'override' | 'profile';

export interface EffectiveSettings {
  syncIntervalHours: number;
  credentialRotationDays: number | null;
  /**
   * registration: stored when registered; override: changed since (settingsOverrides says who and why);
   * profile: not stored (registered before settings were).
   */
  sources: { syncIntervalHours: SettingSource; credentialRotationDays: SettingSource };
}

export function effectiveSettings(i: Integration): EffectiveSettings {
  // Registration always stores the interval: null means the row predates stored settings, and the
  // profile's defaults apply to both (an override writes both columns).
  const legacy = i.syncIntervalHours === null;
  const defaults = integrationDefaults(profileFor(i.vendor), i.authMethod);
  const source = (key: keyof SettingsOverrides): SettingSource =>
    i.settingsOverrides[key] ? 'override' : legacy ? 'profile' : 'registration';
  return {
    syncIntervalHours: legacy ? defaults.syncIntervalHours : i.syncIntervalHours!,
    credentialRotationDays: legacy ? defaults.credentialRotationDays : i.credentialRotationDays,
    sources: {
      syncIntervalHours: source('syncIntervalHours'),
      credentialRotationDays: source('credentialRotationDays'),
    },
  };
}

export interface CredentialDue {
  integrationId: string;
  tenantId: string;
  authMethod: string;
  rotatedAt: Date;
  /** null: no rotation period (signing keys and certificates rotate by their own means). */
  dueAt: Date | null;
  overdue: boolean;
  daysLeft: number | null;
}

export function credentialDue(i: Integration, now = new Date()): CredentialDue {
  const days = effectiveSettings(i).credentialRotationDays;
  const dueAt = days === null ? null : new Date(i.credentialRotatedAt.getTime() + days * DAY_MS);
  const msLeft = dueAt === null ? null : dueAt.getTime() - now.getTime();
  return {
    integrationId: i.id,
    tenantId: i.tenantId,
    authMethod: i.authMethod,
    rotatedAt: i.credentialRotatedAt,
    dueAt,
    overdue: msLeft !== null && msLeft <= 0,
    daysLeft: msLeft === null ? null : Math.floor(msLeft / DAY_MS),
  };
}

/** Active integrations whose credential is overdue or due within `withinDays`, most urgent first. */
export async function credentialsDue(
  db: Queryable,
  withinDays: number,
  tenantId?: string,
  now = new Date(),
): Promise<CredentialDue[]> {
  return (await listIntegrations(db, tenantId))
    .filter((i) => i.status === 'active')
    .map((i) => credentialDue(i, now))
    .filter((d) => d.dueAt !== null && d.dueAt.getTime() - now.getTime() <= withinDays * DAY_MS)
    .sort((a, b) => a.dueAt!.getTime() - b.dueAt!.getTime());
}

export interface SettingsChange {
  syncIntervalHours?: number;
  credentialRotationDays?: number;
}

/** Changes settings away from their defaults: a reason is required, and who, when and why are kept and audited. */
export async function updateIntegrationSettings(
  pool: Pool,
  integrationId: string,
  change: SettingsChange,
  by: { reason: string },
  ctx: AuditContext,
): Promise<Integration> {
  if (!/^[\x20-\x7e]{1,200}$/.test(by.reason))
    throw new InvalidArgumentError('--reason', 'required: 1-200 printable ASCII characters (no PHI)');
  if (change.syncIntervalHours === undefined && change.credentialRotationDays === undefined) {
    throw new InvalidArgumentError('settings', 'nothing to change (--sync-interval, --rotation-days)');
  }
  if (
    change.syncIntervalHours !== undefined &&
    !(SYNC_INTERVAL_HOURS as readonly number[]).includes(change.syncIntervalHours)
  ) {
    throw new InvalidArgumentError(
      '--sync-interval',
      `hours that divide a day: ${SYNC_INTERVAL_HOURS.map((h) => `${h}h`).join(', ')}`,
    );
  }
  return withTransaction(pool, async (client) => {
    const locked = await client.query('SELECT id FROM integrations WHERE id = $1 FOR NO KEY UPDATE', [integrationId]);
    if (locked.rowCount === 0) throw new NotFoundError('integration', integrationId);
    const current = await getIntegration(client, integrationId);
    const now = effectiveSettings(current);
    if (change.credentialRotationDays !== undefined) {
      if (now.credentialRotationDays === null) {
        throw new InvalidArgumentError(
          '--rotation-days',
          `${integrationId} uses ${current.authMethod}: only client secrets have a rotation period here`,
        );
      }
      if (
        !Number.isInteger(change.credentialRotationDays) ||
        change.credentialRotationDays < 1 ||
        change.credentialRotationDays > 730
      ) {
        throw new InvalidArgumentError('--rotation-days', 'a whole number of days from 1 to 730');
      }
    }
    const at = new Date().toISOString();
    const overrides: SettingsOverrides = { ...current.settingsOverrides };
    const changed: Record<string, { from: number | null; to: number }> = {};
    for (const key of ['syncIntervalHours', 'credentialRotationDays'] as const) {
      const to = change[key];
      if (to === undefined || to === now[key]) continue;
      overrides[key] = { by: ctx.actor, at, reason: by.reason, from: now[key] };
      changed[key] = { from: now[key], to };
    }
    if (Object.keys(changed).length === 0) return current;
    // Both columns are written, so a row from before settings were stored keeps the profile's other value.
    await client.query(
      `UPDATE integrations SET sync_interval_hours = $2, credential_rotation_days = $3, settings_overrides = $4
        WHERE id = $1`,
      [
        integrationId,
        change.syncIntervalHours ?? now.syncIntervalHours,
        change.credentialRotationDays ?? now.credentialRotationDays,
        overrides,
      ],
    );
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'integration.settings_changed',
        outcome: 'success',
        tenantId: current.tenantId,
        integrationId,
        details: { ...changed, reason: by.reason },
      },
    ]);
    return getIntegration(client, integrationId);
  });
}

/** The integration's credential was replaced now (restore with a new key, secret or certificate). */
export async function markCredentialRotated(db: Queryable, integrationId: string): Promise<void> {
  await db.query('UPDATE integrations SET credential_rotated_at = now() WHERE id = $1', [integrationId]);
}
