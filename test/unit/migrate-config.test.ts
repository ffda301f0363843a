/** The migration job's configuration (lib/config/migrate-config.ts) and the pgpass reader it uses. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrateConfig } from '../../lib/config/migrate-config.js';
import { ConfigError } from '../../lib/errors/index.js';
import { pgpassPassword, pgpassTargetOf } from '../../lib/store/pgpass.js';
import { useTempDirPerTest } from '../helpers.js';

const target = { host: 'postgresql', port: '5432', database: 'ehr_connectors', user: 'ehr_app_login' };

describe('pgpassPassword', () => {
  it('finds the first matching line, with wildcards, escapes and comments as libpq reads them', () => {
    const text = [
      '# comment: postgresql:5432:ehr_connectors:ehr_app_login:not-this',
      'other:5432:ehr_connectors:ehr_app_login:wrong-host',
      'postgresql:5432:ehr_connectors:ehr:the-owners',
      'postgresql:*:ehr_connectors:ehr_app_login:pa\\:ss\\\\word',
      '*:*:*:*:catch-all',
    ].join('\n');
    expect(pgpassPassword(text, target)).toBe('pa:ss\\word');
    expect(pgpassPassword(text, { ...target, user: 'ehr' })).toBe('the-owners');
    expect(pgpassPassword(text, { ...target, user: 'nobody' })).toBe('catch-all');
    // four fields: malformed
    expect(pgpassPassword('postgresql:5432:ehr_connectors:ehr_app_login\n', target)).toBeUndefined();
    // the password keeps its colons
    expect(pgpassPassword('postgresql:5432:ehr_connectors:ehr_app_login:a:b\r\n', target)).toBe('a:b');
  });

  it('looks a URL up the way pg does (default port 5432, database defaults to the user)', () => {
    expect(pgpassTargetOf('postgresql://ehr_app_login@postgresql/ehr_connectors')).toEqual(target);
    expect(pgpassTargetOf('postgres://u%5Fx@db.example:6543')).toEqual({
      host: 'db.example',
      port: '6543',
      database: 'u_x',
      user: 'u_x',
    });
  });
});

describe('loadMigrateConfig', () => {
  const dir = useTempDirPerTest('migrate-config-');
  let files = 0;
  const pgpass = (line: string, mode = 0o600): string => {
    const file = path.join(dir(), `app_pgpass_${(files += 1)}`);
    fs.writeFileSync(file, `${line}\n`, { mode });
    fs.chmodSync(file, mode);
    return file;
  };
  const env = (extra: Record<string, string | undefined> = {}) => ({
    DATABASE_URL: 'postgresql://ehr@postgresql:5432/ehr_connectors',
    EHR_APP_DATABASE_URL: 'postgresql://ehr_app_login@postgresql:5432/ehr_connectors',
    EHR_APP_PGPASSFILE: pgpass('postgresql:5432:ehr_connectors:ehr_app_login:synthetic-app-pw'),
    EHR_SECRETS_DIR: '/var/lib/ehr/secrets',
    EHR_KEK_DIR: '/run/ehr/keys',
    ...extra,
  });
  const refusal = (e: Record<string, string | undefined>): ConfigError => {
    try {
      loadMigrateConfig(e);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('reads the app role from its URL and its password from the services’ pgpass file', () => {
    const e = env();
    expect(loadMigrateConfig(e)).toEqual({
      ownerDatabaseUrl: 'postgresql://ehr@postgresql:5432/ehr_connectors',
      app: {
        role: 'ehr_app_login',
        databaseUrl: 'postgresql://ehr_app_login@postgresql:5432/ehr_connectors',
        password: 'synthetic-app-pw',
      },
      secretRoots: {
        roots: ['/var/lib/ehr/secrets'],
        excluded: expect.arrayContaining(['/run/ehr/keys', e.EHR_APP_PGPASSFILE]) as string[],
      },
    });
    for (const value of ['synthetic-temporal-pw', 'env:TEMPORAL_PW']) {
      const e = env({
        EHR_TEMPORAL_DB_ROLE: 'temporal',
        EHR_TEMPORAL_DB_PASSWORD: value,
        TEMPORAL_PW: 'synthetic-temporal-pw',
      });
      expect(loadMigrateConfig(e).temporal).toEqual({ role: 'temporal', password: 'synthetic-temporal-pw' });
    }
  });

  it('names what is wrong, never quoting a password', () => {
    expect(refusal(env({ DATABASE_URL: undefined })).field).toBe('DATABASE_URL');
    const remote = refusal(env({ DATABASE_URL: 'postgresql://ehr:synthetic-owner-pw@db.example/ehr_connectors' }));
    expect(remote.message).toMatch(/inlines a database password for host db\.example/);
    expect(remote.message).not.toContain('synthetic-owner-pw');
    expect(refusal(env({ EHR_APP_DATABASE_URL: undefined })).field).toBe('EHR_APP_DATABASE_URL');
    expect(refusal(env({ EHR_SECRETS_DIR: undefined })).field).toBe('EHR_SECRETS_DIR');
    expect(refusal(env({ EHR_SECRET_ROOTS: '/run/ehr/keys/inside' })).field).toBe('EHR_SECRET_ROOTS');
    expect(
      refusal(env({ EHR_APP_DATABASE_URL: 'postgresql://ehr_app_login:synthetic-app-pw@postgresql/ehr_connectors' }))
        .message,
    ).not.toContain('synthetic-app-pw');
    expect(refusal(env({ EHR_APP_DATABASE_URL: 'postgresql://ehr@postgresql:5432/ehr_connectors' })).message).toMatch(
      /names the owner/,
    );
    expect(
      refusal(
        env({ EHR_APP_PGPASSFILE: pgpass('postgresql:5432:ehr_connectors:ehr_app_login:synthetic-app-pw', 0o640) }),
      ).message,
    ).toMatch(/mode 0640; it must be 0600/);
    const missing = refusal(
      env({ EHR_APP_PGPASSFILE: pgpass('postgresql:5432:ehr_connectors:someone_else:synthetic-app-pw') }),
    );
    expect(missing.message).toMatch(/has no line for postgresql:5432:ehr_connectors:ehr_app_login/);
    expect(missing.message).not.toContain('synthetic-app-pw');
    expect(refusal(env({ EHR_TEMPORAL_DB_ROLE: 'temporal' })).field).toBe('EHR_TEMPORAL_DB_PASSWORD');
    expect(refusal(env({ EHR_TEMPORAL_DB_ROLE: 'Temporal!', EHR_TEMPORAL_DB_PASSWORD: 'x' })).field).toBe(
      'EHR_TEMPORAL_DB_ROLE',
    );
  });
});
