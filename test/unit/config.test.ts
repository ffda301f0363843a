import { describe, expect, it } from 'vitest';
import { configFields, loadConfig } from '../../lib/config/schema.js';
import { ConfigError } from '../../lib/errors/index.js';

// Obviously fake values: nothing here is a real secret.
const SECRET_DB_URL = 'postgres://app:fake-pw-0000@127.0.0.1:5432/ehr';
const base = { DATABASE_URL: SECRET_DB_URL, EHR_KEK_DIR: '/tmp/ehr-test-keys' };

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig accepted an invalid environment');
}

describe('loadConfig', () => {
  it('applies defaults when only the required fields are given', () => {
    const config = loadConfig({ ...base });
    expect(config).toEqual({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'ehr-connectors',
      DATABASE_URL: SECRET_DB_URL,
      EHR_KEK_DIR: '/tmp/ehr-test-keys',
      EHR_SECRETS_DIR: '.data/secrets',
      LOG_LEVEL: 'info',
      EHR_VENDOR_TIMEOUT_MS: 30_000,
      EHR_VENDOR_MAX_RESPONSE_BYTES: 64 * 1024 * 1024,
      EHR_SYNC_PAGE_SIZE: 1_000,
      WORKER_MAX_CONCURRENT_ACTIVITIES: 16,
      WORKER_SHUTDOWN_GRACE_MS: 30_000,
      EHR_CIRCUIT_BREAKER: 'standard',
      EHR_ENDPOINT_QUEUE_RECHECK_SECONDS: 10,
      EHR_CREDENTIAL_CACHE_SECONDS: 15,
      EHR_KEK_PROVIDER: 'local',
      EHR_KEY_DESTROY_DELAY_SECONDS: 7 * 24 * 3600,
      EHR_AUDIT_ANCHOR_PATH: '.data/audit-anchor.jsonl',
      EHR_AUDIT_CHECKPOINT_EVERY: 1_000,
      EHR_AUDIT_CHECKPOINT_SECONDS: 300,
      EHR_AUDIT_CHECKPOINT_WRITER: 'on',
      EHR_BREAK_GLASS_MAX_MINUTES: 240,
      EHR_BREAK_GLASS_REMIND_SECONDS: 4 * 3600,
      EHR_BREAK_GLASS_ESCALATE_SECONDS: 24 * 3600,
      EHR_CONFLICT_REMIND_SECONDS: 24 * 3600,
      EHR_CONFLICT_ESCALATE_SECONDS: 3 * 24 * 3600,
      CODEC_HOST: '127.0.0.1',
      CODEC_PORT: 8888,
      CODEC_AUTH_AUDIENCE: 'ehr-connectors-codec',
      CODEC_DECODE_ROLE: 'phi-decoder',
      CODEC_ENCODE_ROLE: 'payload-encoder',
      WEBHOOK_HOST: '127.0.0.1',
      WEBHOOK_PORT: 8891,
      WEBHOOK_MAX_BODY_BYTES: 1024 * 1024,
      WEBHOOK_RETRY_AFTER_SECONDS: 300,
      WEBHOOK_DEBOUNCE_SECONDS: 10,
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: 8892,
      GATEWAY_ACCESS_LIFETIME_SECONDS: 300,
    });
  });

  it('ignores variables outside the schema', () => {
    const config = loadConfig({ ...base, HOME: '/root', UNRELATED: 'x' }) as Record<string, unknown>;
    expect(config.HOME).toBeUndefined();
    expect(config.UNRELATED).toBeUndefined();
  });

  it('coerces numeric fields from strings', () => {
    const config = loadConfig({
      ...base,
      EHR_VENDOR_TIMEOUT_MS: '5000',
      EHR_VENDOR_MAX_RESPONSE_BYTES: '1048576',
      EHR_SYNC_PAGE_SIZE: '250',
      WORKER_MAX_CONCURRENT_ACTIVITIES: '4',
      WORKER_SHUTDOWN_GRACE_MS: '1000',
      WORKER_STICKY_QUEUE_TIMEOUT_MS: '1000',
    });
    expect(config.EHR_VENDOR_TIMEOUT_MS).toBe(5_000);
    expect(config.EHR_VENDOR_MAX_RESPONSE_BYTES).toBe(1_048_576);
    expect(config.EHR_SYNC_PAGE_SIZE).toBe(250);
    expect(config.WORKER_MAX_CONCURRENT_ACTIVITIES).toBe(4);
    expect(config.WORKER_SHUTDOWN_GRACE_MS).toBe(1_000);
    expect(config.WORKER_STICKY_QUEUE_TIMEOUT_MS).toBe(1_000);
  });

  it('names a missing DATABASE_URL', () => {
    for (const env of [
      { EHR_KEK_DIR: '/k' },
      { EHR_KEK_DIR: '/k', DATABASE_URL: '' },
      { EHR_KEK_DIR: '/k', DATABASE_URL: undefined },
    ]) {
      const err = configError(env);
      expect(err.field).toBe('DATABASE_URL');
      expect(err.message).toContain('DATABASE_URL');
      expect(err.message).toMatch(/required/);
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.retryable).toBe(false);
    }
  });

  it('names a missing EHR_KEK_DIR', () => {
    const err = configError({ DATABASE_URL: SECRET_DB_URL });
    expect(err.field).toBe('EHR_KEK_DIR');
    expect(err.message).toContain('EHR_KEK_DIR');
  });

  it('names an invalid DATABASE_URL without echoing its value', () => {
    const bogus = 'mysql://root:fake-pw-1111@db/ehr';
    const err = configError({ ...base, DATABASE_URL: bogus });
    expect(err.field).toBe('DATABASE_URL');
    expect(err.message).toContain('DATABASE_URL');
    expect(err.message).not.toContain('fake-pw-1111');
  });

  it.each(['localhost', 'localhost:', ':7233', 'temporal:port', 'http://temporal:7233', 'host 1:7233'])(
    'names a bad TEMPORAL_ADDRESS (%j)',
    (value) => {
      const err = configError({ ...base, TEMPORAL_ADDRESS: value });
      expect(err.field).toBe('TEMPORAL_ADDRESS');
      expect(err.message).toContain('TEMPORAL_ADDRESS');
      expect(err.message).toContain('host:port');
    },
  );

  it('accepts host:port forms for TEMPORAL_ADDRESS', () => {
    for (const value of ['temporal:7233', '10.0.0.7:7233', '[::1]:7233', 'temporal.internal.example.com:443']) {
      expect(loadConfig({ ...base, TEMPORAL_ADDRESS: value }).TEMPORAL_ADDRESS).toBe(value);
    }
  });

  it.each([
    ['EHR_VENDOR_TIMEOUT_MS', 'abc'],
    ['EHR_VENDOR_TIMEOUT_MS', '0'],
    ['EHR_VENDOR_TIMEOUT_MS', '-1'],
    ['EHR_VENDOR_TIMEOUT_MS', '1.5'],
    ['EHR_VENDOR_TIMEOUT_MS', '600001'],
    ['EHR_SYNC_PAGE_SIZE', '5001'],
    ['WORKER_MAX_CONCURRENT_ACTIVITIES', '1001'],
    ['EHR_VENDOR_MAX_RESPONSE_BYTES', 'lots'],
    ['LOG_LEVEL', 'verbose'],
    ['TEMPORAL_NAMESPACE', 'n'.repeat(201)],
  ])('names %s when it is %j', (field, value) => {
    const err = configError({ ...base, [field]: value });
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  });

  it('refuses a port above 65535', () => {
    expect(configError({ ...base, TEMPORAL_ADDRESS: 'temporal:99999' }).field).toBe('TEMPORAL_ADDRESS');
  });
});

describe('configFields', () => {
  it('marks secrets as required (no default) and everything else as defaulted', () => {
    const required = configFields
      .filter((f) => f.required)
      .map((f) => f.name)
      .sort();
    expect(required).toEqual(['DATABASE_URL', 'EHR_KEK_DIR']);
    expect(configFields.map((f) => f.name)).toContain('TEMPORAL_ADDRESS');
    expect(configFields.find((f) => f.name === 'TEMPORAL_ADDRESS')?.required).toBe(false);
  });
});
