/**
 * The stored-secret-reference policy (lib/config/stored-secret-refs.ts): what an integration's secret
 * reference may name. The key-encryption key, /proc, the process's own environment variables, and any
 * way around the secret roots (`..`, `.`, `//`, symbolic links, hard links) are refused, with a message
 * that names the field and the rule and never the reference. Property-based where the input space is
 * large (path traversal variants).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config/schema.js';
import type { SecretRefRule, StoredSecretPolicy } from '../../lib/config/stored-secret-refs.js';
import {
  SECRET_REF_RULES,
  assertStoredSecretRefAllowed,
  storedSecretPolicy,
  storedSecretPolicyFromConfig,
  storedSecretRefRule,
} from '../../lib/config/stored-secret-refs.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { ConfigError, InvalidArgumentError, SecretRefRefusedError } from '../../lib/errors/index.js';
import type { Pool } from '../../lib/store/pool.js';

let tmp: string;
let root: string;
let kekDir: string;
let kekFile: string;
let policy: StoredSecretPolicy;

function write(file: string, content: string, mode = 0o600): string {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  return file;
}

function refusal(ref: string, p: StoredSecretPolicy = policy): SecretRefRefusedError {
  try {
    assertStoredSecretRefAllowed(ref, { field: '--client-secret-ref', policy: p });
  } catch (err) {
    expect(err).toBeInstanceOf(SecretRefRefusedError);
    const refused = err as SecretRefRefusedError;
    expect(refused.field).toBe('--client-secret-ref');
    // The field and the rule, word for word: never the reference, nor where it points.
    expect(refused.message).toBe(
      `configuration --client-secret-ref: ${SECRET_REF_RULES[refused.rule as SecretRefRule]}`,
    );
    return refused;
  }
  throw new Error('expected the reference to be refused');
}

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'stored-refs-')));
  root = path.join(tmp, 'secrets');
  kekDir = path.join(tmp, 'keys');
  kekFile = write(path.join(kekDir, 'kek-v1.key'), 'fake-kek-material-for-tests');
  fs.mkdirSync(root, { mode: 0o700 });
  policy = storedSecretPolicy({ roots: [root], excluded: [kekDir] });
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a stored secret reference', () => {
  it('may name a 0600 file under a secret root (read through its realpath), an EHR_VENDOR_SECRET_ variable, or a manager', () => {
    const file = write(path.join(root, 'vendor.secret'), 'fake-client-secret');
    expect(assertStoredSecretRefAllowed(`file:${file}`, { field: 'f', policy })).toBe(`file:${file}`);
    expect(assertStoredSecretRefAllowed('env:EHR_VENDOR_SECRET_ORACLE_PROD', { field: 'f', policy })).toBe(
      'env:EHR_VENDOR_SECRET_ORACLE_PROD',
    );
    expect(assertStoredSecretRefAllowed('vault:kv/ehr#oracle', { field: 'f', policy })).toBe('vault:kv/ehr#oracle');
  });

  it('refuses the key-encryption key, its directory, /proc, /sys and /dev', () => {
    expect(refusal(`file:${kekFile}`).rule).toBe('excluded-path');
    expect(refusal(`file:${kekDir}`).rule).toBe('excluded-path');
    for (const p of ['/proc/self/environ', '/proc/1/mem', '/sys/kernel/notes', '/dev/shm/x', '/proc'])
      expect(refusal(`file:${p}`).rule).toBe('system-path');
  });

  it("refuses the process's own environment variables: only the EHR_VENDOR_SECRET_ prefix", () => {
    for (const name of [
      'DATABASE_URL',
      'AWS_SECRET_ACCESS_KEY',
      'PGPASSWORD',
      'EHR_KEK_DIR',
      'ehr_vendor_secret_x',
      'EHR_VENDOR_SECRET_',
    ]) {
      expect(refusal(`env:${name}`).rule).toBe('env-prefix');
    }
  });

  it('refuses files outside every root, the root itself, relative paths and non-references', () => {
    expect(refusal(`file:${path.join(tmp, 'elsewhere.secret')}`).rule).toBe('outside-secret-roots');
    expect(refusal(`file:${root}`).rule).toBe('outside-secret-roots');
    expect(refusal(`file:${root}-sibling/x`).rule).toBe('outside-secret-roots');
    expect(refusal('file:secrets/x').rule).toBe('relative-path');
    expect(refusal('plain-secret-value').rule).toBe('not-a-reference');
    expect(refusal(`file:${root}/a\nb`).rule).toBe('not-a-reference');
  });

  it('refuses a symbolic link under the root that leads to the KEK, /proc or outside the roots', () => {
    const viaLink = path.join(root, 'kek-link.secret');
    fs.symlinkSync(kekFile, viaLink);
    expect(refusal(`file:${viaLink}`).rule).toBe('symlink-escape');
    const dirLink = path.join(root, 'keys');
    fs.symlinkSync(kekDir, dirLink);
    expect(refusal(`file:${dirLink}/kek-v1.key`).rule).toBe('symlink-escape');
    const procLink = path.join(root, 'environ.secret');
    fs.symlinkSync('/proc/self/environ', procLink);
    expect(refusal(`file:${procLink}`).rule).toBe('symlink-escape');
    // A link that stays inside the roots (Kubernetes secret volumes are built of them) is fine.
    const target = write(path.join(root, '..data', 'rotated.secret'), 'fake-rotated-secret');
    const inside = path.join(root, 'rotated.secret');
    fs.symlinkSync(target, inside);
    expect(assertStoredSecretRefAllowed(`file:${inside}`, { field: 'f', policy })).toBe(`file:${target}`);
  });

  it('refuses a hard link (it can alias the KEK)', () => {
    const alias = path.join(root, 'kek-alias.secret');
    fs.linkSync(kekFile, alias);
    expect(refusal(`file:${alias}`).rule).toBe('hard-link');
  });

  it('refuses every traversal variant that leaves the root or is not normalised (property)', () => {
    const segment = fc.oneof(
      fc.constantFrom('..', '.', '', 'keys', 'kek-v1.key', 'secrets', '...', '.hidden', 'a..b'),
      fc.stringMatching(/^[a-z0-9._-]{1,8}$/),
    );
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 8 }),
        fc.constantFrom(root, tmp, kekDir, '/proc/self', ''),
        (segments, base) => {
          const target = [base, ...segments].join('/');
          const rule = storedSecretRefRule(`file:${target}`, policy);
          const normalised = path.posix.normalize(target) === target && !target.endsWith('/') && target.startsWith('/');
          const under = (dir: string) => target.startsWith(`${dir}/`);
          if (rule === undefined) {
            // Allowed only when the path, exactly as written, lies strictly under the root and outside the KEK.
            expect(normalised && under(root) && !under(kekDir) && !target.startsWith('/proc')).toBe(true);
            expect(path.resolve(target).startsWith(`${root}/`)).toBe(true);
          }
          if (segments.includes('..') || segments.includes('.') || segments.slice(0, -1).includes(''))
            expect(rule).toBeDefined();
          if (under(kekDir) && normalised) expect(rule).toBe('excluded-path');
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('never quotes the reference in a refusal (property)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_]{6,20}$/),
        fc.constantFrom('env:', 'file:/proc/', 'file:relative/', `file:${tmp}/`),
        (name, prefix) => {
          const ref = `${prefix}TOKEN${name}`;
          try {
            assertStoredSecretRefAllowed(ref, { field: 'f', policy });
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            expect((err as Error).message).not.toContain(`TOKEN${name}`);
          }
        },
      ),
    );
  });
});

describe('EHR_SECRET_ROOTS', () => {
  const base = {
    DATABASE_URL: 'postgres://127.0.0.1/x',
    EHR_KEK_DIR: '/var/lib/ehr/keys',
    EHR_SECRETS_DIR: '/var/lib/ehr/secrets',
  };

  it('adds to EHR_SECRETS_DIR; excludes the KEK directory and the database password file', () => {
    const p = storedSecretPolicyFromConfig(loadConfig(base), { PGPASSFILE: '/run/secrets/pgpass' });
    expect(p.roots).toEqual(['/var/lib/ehr/secrets']);
    expect(p.excluded).toEqual(
      expect.arrayContaining(['/var/lib/ehr/keys', '/run/secrets/pgpass', path.join(os.homedir(), '.pgpass')]),
    );
    expect(
      storedSecretPolicyFromConfig(loadConfig({ ...base, EHR_SECRET_ROOTS: '/run/secrets:/var/lib/ehr/secrets' }), {})
        .roots,
    ).toEqual(['/var/lib/ehr/secrets', '/run/secrets']);
  });

  it('refuses /, system paths, empty entries and a root inside the KEK directory, naming the field', () => {
    for (const roots of ['/', '/proc/self', '/dev', '/a::/b', '/var/lib/ehr/keys/sub']) {
      expect(() => loadConfig({ ...base, EHR_SECRET_ROOTS: roots })).toThrow(/EHR_SECRET_ROOTS/);
    }
  });
});

describe('integrations add --base-url with a user name or password', () => {
  // Refused before any database or network access: this pool is never touched.
  const pool = new Proxy(
    {},
    {
      get: () => {
        throw new Error('the database was used');
      },
    },
  ) as unknown as Pool;
  const actor = { actor: 'test:unit', correlationId: '00000000-0000-4000-8000-000000000000' };

  it('is refused with a message that repeats neither', async () => {
    const urls = [
      'https://fhir-user:Pa55-w0rd-XYZ@vendor.example/fhir',
      'https://:Pa55-w0rd-XYZ@vendor.example/fhir',
      'https://fhir-user@vendor.example/fhir',
    ];
    for (const baseUrl of urls) {
      const req = {
        id: 'i-userinfo',
        tenantId: 't',
        vendor: 'epic',
        baseUrl,
        clientId: 'c',
        secretsDir: '/nonexistent',
      };
      const err = await registerIntegration(pool, req, actor).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(/--base-url: must not carry a user name or password/);
      expect((err as Error).message).not.toMatch(/Pa55|fhir-user/);
    }
  });
});
