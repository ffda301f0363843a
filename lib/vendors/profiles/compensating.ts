/**
 * Compensating controls: where a vendor is weak, the connector tightens its own settings instead.
 * Each weakness found in a profile comes with the control applied and one concrete setting, so the
 * integration matrix can say exactly what the connector does about it. The sync interval and the
 * secret rotation period become each integration's own settings at registration (integrationDefaults).
 */
import type { Confidence, Fact, VendorProfile } from './types.js';

export type Weakness =
  | 'no-push'
  | 'no-granular-audit-export'
  | 'coarse-scopes'
  | 'long-lived-secret'
  | 'unauthenticated-server'
  | 'low-confidence-facts';

export interface CompensatingControl {
  weakness: Weakness;
  /** What the vendor lacks, in one line. */
  finding: string;
  /** What the connector does instead. */
  control: string;
  /** The setting that realises the control, e.g. `sync interval = 6 h`. */
  setting: string;
}

export interface RecommendedSettings {
  /** Hours between scheduled syncs: 24 (nightly) unless the vendor cannot push changes. */
  syncIntervalHours: number;
  /** How long the connector keeps its own audit trail of vendor calls, in days. */
  auditRetentionDays: number;
  /**
   * Purpose-based field minimisation (lib/fhir/minimise.ts) is always on; 'required' when the vendor's scopes
   * cannot narrow what it sends.
   */
  fieldMinimisation: 'on' | 'required';
  /** Days between client-secret rotations; null when the vendor authenticates by key, not by secret. */
  secretRotationDays: number | null;
  /** Profile facts (dotted paths) of low confidence, to verify at registration and in the conformance run. */
  verifyAtRegistration: string[];
}

/** Nightly: the default cadence of `ehrctl schedule nightly`. */
export const DEFAULT_SYNC_INTERVAL_HOURS = 24;
/** Without push, a change waits at most this long instead of a day. */
export const NO_PUSH_SYNC_INTERVAL_HOURS = 6;
/** Six years: HIPAA's retention period for required documentation (45 CFR 164.316(b)(2)). */
export const DEFAULT_AUDIT_RETENTION_DAYS = 6 * 365;
/** Ten years when our trail is the only per-call record of access (the vendor exports none). */
export const SOLE_RECORD_AUDIT_RETENTION_DAYS = 10 * 365;
/** Client secrets rotate at least this often, whatever lifetime the vendor allows. */
export const SECRET_ROTATION_DAYS = 90;

const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);

/** Intervals that divide a day, so every scheduled run falls at the same local times each day. */
export const SYNC_INTERVAL_HOURS = [1, 2, 3, 4, 6, 8, 12, 24] as const;

/** The controls that become an integration's own settings at registration (lib/integrations/settings.ts). */
export interface IntegrationDefaults {
  syncIntervalHours: number;
  /** Client secrets only; null when the integration authenticates with a signing key or a certificate. */
  credentialRotationDays: number | null;
}

/**
 * An integration's defaults from its vendor's controls and its own auth method: the profile's sync
 * interval; for a client secret, rotation every SECRET_ROTATION_DAYS or sooner if the vendor's secrets
 * expire sooner — also when the vendor prefers keys but this integration was registered with a secret.
 */
export function integrationDefaults(profile: VendorProfile, authMethod: string): IntegrationDefaults {
  const lifetime = profile.auth.secretLifetimeDays.value;
  return {
    syncIntervalHours: recommendedSettings(profile).syncIntervalHours,
    credentialRotationDays: SECRET_METHODS.has(authMethod)
      ? Math.min(SECRET_ROTATION_DAYS, lifetime ?? SECRET_ROTATION_DAYS)
      : null,
  };
}

/** The weaknesses of a profile and the control the connector applies to each, in a stable order. */
export function compensatingControls(profile: VendorProfile): CompensatingControl[] {
  const controls: CompensatingControl[] = [];
  const push = profile.push.value;
  if (push !== 'subscriptions' && push !== 'webhooks') {
    controls.push({
      weakness: 'no-push',
      finding: push === 'none' ? 'no change notifications' : `no dependable FHIR push (${push})`,
      control: 'sync more often than nightly, so a change waits hours rather than a day',
      setting: `sync interval = ${NO_PUSH_SYNC_INTERVAL_HOURS} h (the integration's default schedule)`,
    });
  }
  if (profile.auditExport.value !== 'granular') {
    controls.push({
      weakness: 'no-granular-audit-export',
      finding:
        profile.auditExport.value === 'none'
          ? 'no access-log export per API client'
          : 'access logs are coarse or stay with the customer',
      control: 'keep the connector’s own hash-chained audit of every vendor call for longer',
      // Met by construction: nothing in the product deletes audit rows, so no per-integration setting exists.
      setting:
        `audit retention ≥ ${SOLE_RECORD_AUDIT_RETENTION_DAYS} days (default ` +
        `${DEFAULT_AUDIT_RETENTION_DAYS}; audit rows are never deleted)`,
    });
  }
  if (profile.scopes.granularity.value === 'coarse') {
    controls.push({
      weakness: 'coarse-scopes',
      finding: 'one scope grants more than a purpose needs',
      control:
        'purpose-based field minimisation (lib/fhir/minimise.ts) ' +
        'drops every element outside the purpose before encryption',
      setting: 'field minimisation = required (cannot be relaxed for this vendor)',
    });
  }
  if (usesLongLivedSecret(profile)) {
    const lifetime = profile.auth.secretLifetimeDays.value;
    controls.push({
      weakness: 'long-lived-secret',
      finding:
        `authenticates with a client secret ` +
        `(${lifetime === null ? 'lifetime unknown' : `valid ${lifetime} days`})`,
      control: 'rotate the client secret on our own schedule, well inside the vendor’s lifetime',
      setting: `secret rotation = every ${SECRET_ROTATION_DAYS} days (the integration's credential due date)`,
    });
  }
  if (profile.auth.methods.value.includes('none')) {
    controls.push({
      weakness: 'unauthenticated-server',
      finding: 'may be registered as an open server (auth method none): no client authentication at all',
      control:
        'residual risk, accepted per integration: refused unless the base URL is https (or loopback) and the ' +
        'operator acknowledges it (audited); the network that protects the server is the organisation’s',
      setting: 'acknowledgement required per integration (--acknowledge-unauthenticated-server, audited)',
    });
  }
  const unsure = lowConfidenceFacts(profile);
  if (unsure.length > 0) {
    controls.push({
      weakness: 'low-confidence-facts',
      finding: `${unsure.length} unverified fact${unsure.length === 1 ? '' : 's'}: ${unsure.join(', ')}`,
      control:
        'check each against the live endpoint at registration (discovery, token response) and in the conformance run',
      setting: 'verified at registration / conformance run',
    });
  }
  return controls;
}

export function recommendedSettings(profile: VendorProfile): RecommendedSettings {
  const weaknesses = new Set(compensatingControls(profile).map((c) => c.weakness));
  return {
    syncIntervalHours: weaknesses.has('no-push') ? NO_PUSH_SYNC_INTERVAL_HOURS : DEFAULT_SYNC_INTERVAL_HOURS,
    auditRetentionDays: weaknesses.has('no-granular-audit-export')
      ? SOLE_RECORD_AUDIT_RETENTION_DAYS
      : DEFAULT_AUDIT_RETENTION_DAYS,
    fieldMinimisation: weaknesses.has('coarse-scopes') ? 'required' : 'on',
    secretRotationDays: weaknesses.has('long-lived-secret') ? SECRET_ROTATION_DAYS : null,
    verifyAtRegistration: lowConfidenceFacts(profile),
  };
}

/** The preferred method (listed first) is what the connector uses; a secret there is a standing credential. */
function usesLongLivedSecret(profile: VendorProfile): boolean {
  const preferred = profile.auth.methods.value[0];
  if (!preferred || !SECRET_METHODS.has(preferred)) return false;
  const lifetime = profile.auth.secretLifetimeDays.value;
  return lifetime === null || lifetime > SECRET_ROTATION_DAYS;
}

/** Dotted paths of every fact below medium confidence, in profile order. */
export function lowConfidenceFacts(profile: VendorProfile, below: Confidence = 'M'): string[] {
  const rank: Record<Confidence, number> = { L: 0, M: 1, H: 2 };
  return factEntries(profile)
    .filter(([, f]) => rank[f.confidence] < rank[below])
    .map(([path]) => path);
}

/** Every fact of a profile with its dotted path (`auth.methods`, `rateLimit`, …), in declaration order. */
export function factEntries(profile: VendorProfile): Array<[string, Fact<unknown>]> {
  const out: Array<[string, Fact<unknown>]> = [];
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      if (value === null || typeof value !== 'object') continue;
      const path = prefix ? `${prefix}.${key}` : key;
      if (isFact(value)) out.push([path, value]);
      else walk(value as Record<string, unknown>, path);
    }
  };
  walk(profile as unknown as Record<string, unknown>, '');
  return out;
}

function isFact(value: object): value is Fact<unknown> {
  return 'value' in value && 'source' in value && 'confidence' in value;
}
