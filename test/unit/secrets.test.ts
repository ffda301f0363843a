/**
 * Secrets by reference (DESIGN §4 invariant 11): file: (private files only) and env: references,
 * external secret managers behind an interface, and configuration that inlines a secret refused
 * with the field's name — never with the value.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, loadConfigWithSecrets } from '../../lib/config/schema.js';
import {
  registerSecretManager,
  resolveSecret,
  resolveSecretSync,
  unregisterSecretManager,
} from '../../lib/config/secrets.js';
import { ConfigError } from '../../lib/errors/index.js';

// Obviously fake values: nothing here is a real secret.
const REMOTE_URL = 'postgresql://app:fake-remote-pw-1234@db.internal.example:5432/ehr';
const PEM =
  '-----BEGIN PRIVATE ' +
  'KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFAKEFAKEFAKE\n-----END PRIVATE KEY-----\n';
let dir: string;

function write(name: string, content: string, mode: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  return file;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const base = { EHR_KEK_DIR: '/tmp/ehr-test-keys' };

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secrets-test-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('secret references', () => {
  it('reads file: references from private files, ignoring one trailing newline', async () => {
    const file = write('db-url', `${REMOTE_URL}\n`, 0o600);
    expect(resolveSecretSync(`file:${file}`)).toBe(REMOTE_URL);
    expect(await resolveSecret(`file:${file}`)).toBe(REMOTE_URL);
  });

  it('refuses group- or world-readable secret files, naming the field and the mode', () => {
    for (const mode of [0o640, 0o604, 0o644]) {
      const file = write(`open-${mode.toString(8)}`, 'fake-secret-value', mode);
      const err = configError(() => resolveSecretSync(`file:${file}`, { field: 'CODEC_TLS_KEY' }));
      expect(err.field).toBe('CODEC_TLS_KEY');
      expect(err.message).toContain(`mode 0${mode.toString(8)}`);
      expect(err.message).toContain('chmod 600');
      expect(err.message).not.toContain('fake-secret-value');
    }
  });

  it('refuses relative paths, missing files and directories', () => {
    expect(configError(() => resolveSecretSync('file:relative/key.pem')).message).toMatch(/absolute path/);
    expect(configError(() => resolveSecretSync(`file:${path.join(dir, 'missing')}`)).message).toMatch(/ENOENT/);
    expect(configError(() => resolveSecretSync(`file:${dir}`)).message).toMatch(/not a regular file/);
  });

  it('reads env: references, and names an unset variable', () => {
    expect(resolveSecretSync('env:EHR_TEST_FAKE_SECRET', { env: { EHR_TEST_FAKE_SECRET: 'fake-env-secret' } })).toBe(
      'fake-env-secret',
    );
    const err = configError(() => resolveSecretSync('env:EHR_TEST_UNSET', { field: 'DATABASE_URL', env: {} }));
    expect(err.message).toBe(
      'configuration DATABASE_URL: environment variable EHR_TEST_UNSET (named by env:EHR_TEST_UNSET) is not set',
    );
  });

  it('resolves external schemes through a registered secret manager, and names a scheme without one', async () => {
    await expect(resolveSecret('vault:kv/ehr#db', { field: 'DATABASE_URL' })).rejects.toThrow(
      'configuration DATABASE_URL: no secret manager provider registered for scheme vault: (built in: file:, env:)',
    );
    registerSecretManager({
      scheme: 'vault',
      resolve: async (ref) =>
        ref === 'vault:kv/ehr#db' ? REMOTE_URL : Promise.reject(new Error(`not found: ${ref} fake-leak`)),
    });
    try {
      expect(await resolveSecret('vault:kv/ehr#db')).toBe(REMOTE_URL);
      const err = (await resolveSecret('vault:kv/other', { field: 'X' }).then(
        () => new Error('resolved'),
        (e: unknown) => e,
      )) as Error;
      expect(err.message).toBe('configuration X: secret manager vault: could not resolve the reference');
      // loadConfig is synchronous and cannot reach a manager; loadConfigWithSecrets can.
      expect(configError(() => loadConfig({ ...base, DATABASE_URL: 'vault:kv/ehr#db' })).message).toMatch(
        /resolved asynchronously/,
      );
      expect((await loadConfigWithSecrets({ ...base, DATABASE_URL: 'vault:kv/ehr#db' })).DATABASE_URL).toBe(REMOTE_URL);
    } finally {
      unregisterSecretManager('vault');
    }
  });
});

describe('configuration secrets', () => {
  it('accepts a literal DATABASE_URL with a password only for a loopback host', () => {
    for (const url of [
      'postgres://app:pw@127.0.0.1:5432/ehr',
      'postgresql://app:pw@localhost/ehr',
      'postgresql://app:pw@[::1]:5432/ehr',
      'postgresql://app@db.internal.example/ehr',
    ]) {
      expect(loadConfig({ ...base, DATABASE_URL: url }).DATABASE_URL).toBe(url);
    }
  });

  it('refuses a literal DATABASE_URL that carries a password for another host, without echoing it', () => {
    for (const url of [REMOTE_URL, 'postgresql://app@db.internal.example/ehr?password=fake-remote-pw-1234']) {
      const err = configError(() => loadConfig({ ...base, DATABASE_URL: url }));
      expect(err.field).toBe('DATABASE_URL');
      expect(err.message).toMatch(/inlines a database password for host db\.internal\.example.*file:.*env:/);
      expect(err.message).not.toContain('fake-remote-pw-1234');
    }
  });

  it('resolves DATABASE_URL from file: and env: references', () => {
    const file = write('database-url', `${REMOTE_URL}\n`, 0o600);
    expect(loadConfig({ ...base, DATABASE_URL: `file:${file}` }).DATABASE_URL).toBe(REMOTE_URL);
    expect(
      loadConfig({ ...base, DATABASE_URL: 'env:EHR_DB_URL_SECRET', EHR_DB_URL_SECRET: REMOTE_URL }).DATABASE_URL,
    ).toBe(REMOTE_URL);
    const open = write('database-url-open', REMOTE_URL, 0o644);
    expect(configError(() => loadConfig({ ...base, DATABASE_URL: `file:${open}` })).field).toBe('DATABASE_URL');
    const bad = write('database-url-bad', 'not a url fake-remote-pw-1234', 0o600);
    const err = configError(() => loadConfig({ ...base, DATABASE_URL: `file:${bad}` }));
    expect(err.message).toBe(
      'configuration DATABASE_URL: expected a postgres:// URL (in the value its secret reference names)',
    );
  });

  it('requires CODEC_TLS_KEY by reference, checks it at load, and keeps the reference', () => {
    const dbUrl = 'postgres://app:pw@127.0.0.1:5432/ehr';
    const inline = configError(() => loadConfig({ ...base, DATABASE_URL: dbUrl, CODEC_TLS_KEY: PEM }));
    expect(inline.field).toBe('CODEC_TLS_KEY');
    expect(inline.message).toMatch(/must be given by reference/);
    expect(inline.message).not.toContain('FAKEFAKE');
    expect(
      configError(() => loadConfig({ ...base, DATABASE_URL: dbUrl, CODEC_TLS_KEY: '/etc/codec/key.pem' })).field,
    ).toBe('CODEC_TLS_KEY');
    const open = write('codec-open.pem', PEM, 0o644);
    expect(
      configError(() => loadConfig({ ...base, DATABASE_URL: dbUrl, CODEC_TLS_KEY: `file:${open}` })).message,
    ).toMatch(/mode 0644/);
    const key = write('codec.pem', PEM, 0o600);
    expect(loadConfig({ ...base, DATABASE_URL: dbUrl, CODEC_TLS_KEY: `file:${key}` }).CODEC_TLS_KEY).toBe(
      `file:${key}`,
    );
  });

  it.each(['GATEWAY_ACCESS_SIGNING_KEY', 'GATEWAY_TLS_KEY'])('requires %s by reference, checked at load', (field) => {
    const dbUrl = 'postgres://app:pw@127.0.0.1:5432/ehr';
    const inline = configError(() => loadConfig({ ...base, DATABASE_URL: dbUrl, [field]: PEM }));
    expect(inline.field).toBe(field);
    expect(inline.message).toMatch(/must be given by reference/);
    expect(inline.message).not.toContain('FAKEFAKE');
    const open = write(`${field}-open.pem`, PEM, 0o644);
    expect(configError(() => loadConfig({ ...base, DATABASE_URL: dbUrl, [field]: `file:${open}` })).message).toMatch(
      /mode 0644/,
    );
    const key = write(`${field}.pem`, PEM, 0o600);
    expect(loadConfig({ ...base, DATABASE_URL: dbUrl, [field]: `file:${key}` })[field as 'GATEWAY_TLS_KEY']).toBe(
      `file:${key}`,
    );
  });

  it('refuses a private key pasted into any other field, naming it', () => {
    const dbUrl = 'postgres://app:pw@127.0.0.1:5432/ehr';
    const pem = configError(() => loadConfig({ ...base, DATABASE_URL: dbUrl, CODEC_AUTH_ISSUER_KEY: PEM }));
    expect(pem.field).toBe('CODEC_AUTH_ISSUER_KEY');
    expect(pem.message).toMatch(/inlines a private key/);
    const jwk = JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'fake-private-d' });
    expect(configError(() => loadConfig({ ...base, DATABASE_URL: dbUrl, CODEC_AUTH_ISSUER_KEY: jwk })).field).toBe(
      'CODEC_AUTH_ISSUER_KEY',
    );
    const publicJwk = JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' });
    expect(loadConfig({ ...base, DATABASE_URL: dbUrl, CODEC_AUTH_ISSUER_KEY: publicJwk }).CODEC_AUTH_ISSUER_KEY).toBe(
      publicJwk,
    );
  });
});
