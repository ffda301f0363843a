/**
 * Vendor adapters and compensating controls: pure functions of a profile, so every quirk a vendor
 * has (scope syntax, a fixed 429 window, a practice id on every request) is checked without a vendor.
 */
import { describe, expect, it } from 'vitest';
import { intervalHoursFor, parseEvery } from '../../client/commands/schedule.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import {
  activityRatePerSecond,
  applyExtraParameters,
  assertionAudience,
  scopesFor,
  throttleDelayMs,
  typesGranted,
  validateVendorParams,
} from '../../lib/vendors/profiles/adapters.js';
import {
  compensatingControls,
  integrationDefaults,
  lowConfidenceFacts,
  recommendedSettings,
} from '../../lib/vendors/profiles/compensating.js';
import { PROFILES, profileFor } from '../../lib/vendors/profiles/index.js';
import type { VendorProfile } from '../../lib/vendors/profiles/types.js';
import { VENDOR_IDS } from '../../lib/vendors/profiles/types.js';

const { epic, athenahealth, eclinicalworks, nextgen, sandbox } = PROFILES;
const oracle = PROFILES['oracle-health'];

/** A vendor with nothing to compensate: push, granular audit export, per-type scopes, keys, all facts from its docs. */
function exemplaryVendor(): VendorProfile {
  const p = structuredClone(sandbox);
  p.push = { value: 'subscriptions', source: 'test', confidence: 'H' };
  return p;
}

function errorOf(fn: () => void): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err;
    throw err;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('scopes', () => {
  it('requests read/search scopes in the vendor syntax: v1 .read, v2 .rs', () => {
    expect(scopesFor(epic, ['Patient', 'Observation'])).toEqual(['system/Patient.read', 'system/Observation.read']);
    expect(scopesFor(sandbox, ['Patient', 'Observation'])).toEqual(['system/Patient.rs', 'system/Observation.rs']);
  });

  it('reads which requested types a granted scope string covers, in either syntax and with wildcards', () => {
    const requested = ['Patient', 'Observation', 'Condition'] as const;
    expect(typesGranted('system/Patient.rs system/Observation.read', requested)).toEqual(['Patient', 'Observation']);
    expect(typesGranted('system/*.read', requested)).toEqual([...requested]);
    expect(typesGranted('system/Condition.cruds  system/Patient.*', requested)).toEqual(['Patient', 'Condition']);
    // Read without search, patient-level scopes and an empty grant cover nothing.
    expect(typesGranted('system/Patient.r patient/Observation.read', requested)).toEqual([]);
    expect(typesGranted('', requested)).toEqual([]);
  });
});

describe('assertion audience', () => {
  it('is the token URL for SMART vendors and the issuer (or the token URL origin) for issuer-audience vendors', () => {
    const tokenUrl = 'https://auth.vendor.example/oauth2/token';
    expect(assertionAudience(epic, { tokenUrl, issuer: 'https://auth.vendor.example' })).toBe(tokenUrl);
    const issuerVendor = structuredClone(epic);
    issuerVendor.auth.assertionAudience = { value: 'issuer', source: 'test', confidence: 'H' };
    expect(assertionAudience(issuerVendor, { tokenUrl, issuer: 'https://issuer.vendor.example' })).toBe(
      'https://issuer.vendor.example',
    );
    expect(assertionAudience(issuerVendor, { tokenUrl })).toBe('https://auth.vendor.example');
  });
});

describe('vendor parameters', () => {
  it('refuses a missing required parameter and says what the vendor expects', () => {
    const err = errorOf(() => validateVendorParams(athenahealth, {}));
    expect(err.argument).toBe('--param');
    expect(err.message).toContain('athenahealth needs practiceId');
    expect(err.message).toContain('expected: practiceId (the athenahealth practice');
  });

  it('refuses a parameter the vendor does not take, naming it', () => {
    expect(errorOf(() => validateVendorParams(epic, { siteId: 'x' })).message).toBe(
      '--param: Epic takes no parameter siteId; expected: none',
    );
    expect(errorOf(() => validateVendorParams(athenahealth, { practiceId: '195900', region: 'us' })).message).toContain(
      'takes no parameter region',
    );
  });

  it('refuses values outside a plain identifier alphabet, without echoing the value', () => {
    const err = errorOf(() => validateVendorParams(athenahealth, { practiceId: 'a b;drop' }));
    expect(err.message).toBe('--param: practiceId: use 1-128 letters, digits and . _ : / -');
    expect(() => validateVendorParams(athenahealth, { practiceId: 'Organization/a-1.Practice-195900' })).not.toThrow();
  });

  it('adds query parameters and headers to FHIR requests without overriding a parameter already on the link', () => {
    const url = new URL('https://fhir.vendor.example/r4/Patient?_count=10');
    const headers: Record<string, string> = {};
    applyExtraParameters(athenahealth, url, headers, { practiceId: 'Organization/a-1.Practice-195900' });
    expect(url.searchParams.get('ah-practice')).toBe('Organization/a-1.Practice-195900');
    const next = new URL('https://fhir.vendor.example/r4/Patient?ah-practice=Organization/a-1.Practice-1');
    applyExtraParameters(athenahealth, next, headers, { practiceId: 'Organization/a-1.Practice-195900' });
    expect(next.searchParams.getAll('ah-practice')).toEqual(['Organization/a-1.Practice-1']);
    applyExtraParameters(nextgen, url, headers, { siteId: 'site-7' });
    expect(headers).toEqual({ 'x-ng-siteid': 'site-7' });
  });
});

describe('429 handling and endpoint rate', () => {
  const minute = 60_000;

  it('honours Retry-After whenever the vendor sends one, even for a fixed-window vendor', () => {
    expect(throttleDelayMs(eclinicalworks, 5_000, 10 * minute + 1_000, () => 0)).toBe(5_000);
    expect(throttleDelayMs(epic, 0, 0)).toBe(0);
  });

  it('waits out a fixed window (eClinicalWorks: rest of the minute) plus 250 ms and up to 1 s of jitter', () => {
    expect(throttleDelayMs(eclinicalworks, undefined, 10 * minute + 15_000, () => 0)).toBe(45_000 + 250);
    expect(throttleDelayMs(eclinicalworks, undefined, 10 * minute + 59_900, () => 0.9999)).toBe(100 + 250 + 999);
    // Exactly on the boundary the window just started: a whole minute.
    expect(throttleDelayMs(eclinicalworks, undefined, 10 * minute, () => 0)).toBe(minute + 250);
  });

  it('leaves the backoff to the retry preset for vendors without a fixed window', () => {
    expect(throttleDelayMs(epic, undefined, 12_345)).toBeUndefined();
    expect(throttleDelayMs(athenahealth, undefined, 12_345)).toBeUndefined();
  });

  it('holds 90 % of a published limit per endpoint, and sets no limit where none is published', () => {
    expect(activityRatePerSecond(eclinicalworks)).toBeCloseTo((250 / 60) * 0.9, 10);
    expect(activityRatePerSecond(athenahealth)).toBeCloseTo(9, 10);
    expect(activityRatePerSecond(epic)).toBeUndefined();
  });
});

describe('compensating controls', () => {
  it('gives Epic a 6-hourly sync, longer audit retention and required minimisation, and lists what to verify', () => {
    expect(compensatingControls(epic).map((c) => c.weakness)).toEqual([
      'no-push',
      'no-granular-audit-export',
      'coarse-scopes',
      'low-confidence-facts',
    ]);
    expect(recommendedSettings(epic)).toEqual({
      syncIntervalHours: 6,
      auditRetentionDays: 3650,
      fieldMinimisation: 'required',
      secretRotationDays: null,
      verifyAtRegistration: ['auth.jwksCacheSeconds', 'auth.revocationEndpoint', 'tokens.lifetimeSeconds', 'rateLimit'],
    });
  });

  it('rotates a long-lived client secret every 90 days when the vendor’s preferred method is a secret', () => {
    for (const p of [oracle, nextgen]) {
      const secret = compensatingControls(p).find((c) => c.weakness === 'long-lived-secret');
      expect(secret?.setting, p.id).toBe("secret rotation = every 90 days (the integration's credential due date)");
      expect(recommendedSettings(p).secretRotationDays).toBe(90);
    }
    // athenahealth accepts a secret but the connector uses its preferred method, a signed assertion.
    expect(recommendedSettings(athenahealth).secretRotationDays).toBeNull();
  });

  it('says minimisation is on, not required, where scopes are per type', () => {
    expect(recommendedSettings(athenahealth).fieldMinimisation).toBe('on');
    expect(compensatingControls(eclinicalworks).find((c) => c.weakness === 'coarse-scopes')?.control).toContain(
      'lib/fhir/minimise.ts',
    );
  });

  it('adds nothing for a vendor without weaknesses: nightly sync, six-year retention', () => {
    const vendor = exemplaryVendor();
    expect(compensatingControls(vendor)).toEqual([]);
    expect(recommendedSettings(vendor)).toEqual({
      syncIntervalHours: 24,
      auditRetentionDays: 2190,
      fieldMinimisation: 'on',
      secretRotationDays: null,
      verifyAtRegistration: [],
    });
  });

  it('counts connector defaults as facts to verify', () => {
    expect(lowConfidenceFacts(eclinicalworks)).toContain('auth.jwksCacheSeconds');
    expect(lowConfidenceFacts(eclinicalworks)).not.toContain('rateLimit');
  });

  it('gives every weakness of every vendor a concrete setting', () => {
    for (const id of VENDOR_IDS) {
      for (const c of compensatingControls(profileFor(id))) {
        expect(c.setting, `${id} ${c.weakness}`).toMatch(/\d|required|verified/);
        expect(c.control.length, `${id} ${c.weakness}`).toBeGreaterThan(10);
      }
    }
  });
});

describe("compensating controls as an integration's defaults", () => {
  it('sets the sync interval from push support and a secret rotation period only for client secrets', () => {
    // Epic cannot push: every 6 h; it authenticates with keys, so no secret rotation period.
    expect(integrationDefaults(profileFor('epic'), 'private_key_jwt')).toEqual({
      syncIntervalHours: 6,
      credentialRotationDays: null,
    });
    // Oracle Health: a long-lived secret (a year) rotated every 90 days.
    expect(integrationDefaults(profileFor('oracle-health'), 'client_secret_basic')).toEqual({
      syncIntervalHours: 6,
      credentialRotationDays: 90,
    });
    // A vendor that prefers keys but was registered with a secret: the secret still rotates.
    expect(integrationDefaults(profileFor('sandbox'), 'client_secret_post').credentialRotationDays).toBe(90);
    expect(integrationDefaults(profileFor('sandbox'), 'tls_client_auth').credentialRotationDays).toBeNull();
  });
});

describe('schedule interval (ehrctl schedule nightly --every)', () => {
  it("defaults to the integration's interval, and accepts nightly, the profile's, or hours that divide a day", () => {
    expect(intervalHoursFor(parseEvery(undefined), 'epic', 12)).toBe(12);
    expect(intervalHoursFor(parseEvery(undefined), 'epic')).toBe(6);
    expect(intervalHoursFor(parseEvery('nightly'), 'epic', 12)).toBe(24);
    expect(intervalHoursFor(parseEvery('profile'), 'epic')).toBe(6);
    expect(intervalHoursFor(parseEvery('6h'), 'epic')).toBe(6);
    expect(intervalHoursFor(parseEvery('12h'), 'sandbox')).toBe(12);
  });

  it('refuses intervals that would drift across days', () => {
    for (const bad of ['5h', '0h', '36h', 'hourly', '6']) {
      expect(errorOf(() => parseEvery(bad)).message, bad).toContain(
        '--every: use nightly, profile, or hours that divide a day',
      );
    }
  });
});
