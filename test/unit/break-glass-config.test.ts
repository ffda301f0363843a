/**
 * Break-glass settings: the alert hook's URL only by secret reference (such URLs carry their token), https or
 * loopback http without credentials; grants capped by EHR_BREAK_GLASS_MAX_MINUTES and never beyond a day.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config/schema.js';
import { ConfigError, InvalidArgumentError } from '../../lib/errors/index.js';
import { checkBreakGlassRequest } from '../../lib/gateway/break-glass.js';
import { checkAlertHookUrl, postBreakGlassAlert } from '../../lib/gateway/break-glass-alerts.js';

const base = { DATABASE_URL: 'postgres://app@127.0.0.1:5432/ehr', EHR_KEK_DIR: '/tmp/ehr-test-keys' };
const HOOK = 'https://hooks.example.org/services/T000/B000/fake-token-0000';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('break-glass configuration', () => {
  it('takes the alert hook only by reference, without echoing an inline URL', () => {
    const err = thrown(() => loadConfig({ ...base, EHR_BREAK_GLASS_ALERT_URL: HOOK }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('EHR_BREAK_GLASS_ALERT_URL');
    expect((err as Error).message).toMatch(/must be given by reference/);
    expect((err as Error).message).not.toContain('fake-token');
    const env = {
      ...base,
      EHR_BREAK_GLASS_ALERT_URL: 'env:EHR_TEST_BREAK_GLASS_HOOK',
      EHR_TEST_BREAK_GLASS_HOOK: HOOK,
    };
    expect(loadConfig(env).EHR_BREAK_GLASS_ALERT_URL).toBe('env:EHR_TEST_BREAK_GLASS_HOOK');
  });

  it('sends alerts over https or to loopback only, never with credentials in the URL', async () => {
    expect(checkAlertHookUrl(HOOK).hostname).toBe('hooks.example.org');
    expect(checkAlertHookUrl('http://127.0.0.1:9/hook').port).toBe('9');
    for (const url of ['http://hooks.example.org/x', 'https://user:pw@hooks.example.org/x', 'ftp://h/x', 'not a url']) {
      const err = thrown(() => checkAlertHookUrl(url));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).not.toContain('hooks.example.org');
    }
    // No hook configured: nothing is sent, and that is not an error.
    expect(await postBreakGlassAlert({} as never, { ref: undefined })).toBe(false);
  });

  it('caps a grant at EHR_BREAK_GLASS_MAX_MINUTES, and at a day whatever that says', () => {
    const req = {
      consumerId: 'c1',
      scope: 'system/Observation.rs',
      reasonCode: 'emergency-care',
      reason: 'synthetic',
      minutes: 61,
      requestedBy: 'alice@clinic',
    };
    expect(thrown(() => checkBreakGlassRequest(req, 60))).toBeInstanceOf(InvalidArgumentError);
    expect(checkBreakGlassRequest(req, 240).minutes).toBe(61);
    expect((thrown(() => checkBreakGlassRequest({ ...req, minutes: 1441 }, 5000)) as Error).message).toMatch(
      /from 1 to 1440/,
    );
    expect(() => loadConfig({ ...base, EHR_BREAK_GLASS_MAX_MINUTES: '1441' })).toThrow(/EHR_BREAK_GLASS_MAX_MINUTES/);
    expect(() => checkBreakGlassRequest({ ...req, reason: 'née' }, 240)).toThrow(/--reason: .*printable ASCII/);
  });
});
