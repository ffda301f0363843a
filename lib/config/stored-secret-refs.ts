/**
 * What a secret reference STORED FOR AN INTEGRATION may name (DESIGN §4 invariant 11). The worker
 * reads such a reference and sends the secret to a vendor (a client secret as a Basic-auth password,
 * a client certificate key in the TLS handshake), so a reference that names the key-encryption key,
 * `/proc/self/environ` or `env:DATABASE_URL` is an exfiltration path. Stored references may name only:
 *
 *   file:<path>   a file strictly beneath a secret root (EHR_SECRETS_DIR, where the product writes
 *                 the secrets it generates, and the directories of EHR_SECRET_ROOTS), never beneath an
 *                 excluded path (EHR_KEK_DIR, PGPASSFILE, ~/.pgpass) or /proc, /sys, /dev — checked on
 *                 the path as written AND on its realpath, so `..` and symbolic links cannot escape; a
 *                 file with more than one hard link is refused (a hard link can alias the KEK);
 *   env:EHR_VENDOR_SECRET_<NAME>   only variables with this prefix, never the process's own settings;
 *   <scheme>:<locator>             a registered secret manager, as for configuration.
 *
 * The database applies the same lexical rules, in the same order and with the same rule codes
 * (migrations/1733200000000_stored-secret-refs.sql). References the operator gives the process in its
 * own environment (CODEC_TLS_KEY, DATABASE_URL …) are configuration and follow lib/config/secrets.ts.
 * Refusals name the field and the rule, never the reference or what it points at.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, SecretRefRefusedError } from '../errors/index.js';
import { parseSecretRef } from './secrets.js';

export const VENDOR_SECRET_ENV_PREFIX = 'EHR_VENDOR_SECRET_';
const VENDOR_SECRET_ENV = /^EHR_VENDOR_SECRET_[A-Z0-9_]+$/;
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Kernel and device filesystems: never a secret file, often the process's own memory or environment. */
export const SYSTEM_PATHS: readonly string[] = ['/proc', '/sys', '/dev'];

export const SECRET_REF_RULES = {
  'not-a-reference':
    `must be a secret reference: file:<absolute path under a secret root>, env:${VENDOR_SECRET_ENV_PREFIX}<NAME> ` +
    'or a registered secret manager scheme',
  'env-prefix':
    `env: references stored for an integration must name a variable starting with ${VENDOR_SECRET_ENV_PREFIX} ` +
    "(the process's own settings are never sent to a vendor)",
  'relative-path': 'file: references must name an absolute path',
  'not-normalised': 'file: references must name a normalised path (no ".", ".." or empty segments, no trailing slash)',
  'system-path': 'file: references must not name anything under /proc, /sys or /dev',
  'excluded-path':
    'file: references must not name the key-encryption-key directory (EHR_KEK_DIR) ' +
    'or the database password file (PGPASSFILE)',
  'outside-secret-roots':
    'file: references must name a file beneath a secret root (EHR_SECRETS_DIR or a directory of EHR_SECRET_ROOTS)',
  'symlink-escape':
    'file: references must not resolve, through a symbolic link, ' +
    'outside the secret roots or into an excluded or system path',
  'hard-link':
    'file: references must name a file with a single link (a hard link can alias another secret, ' +
    'such as a key-encryption key)',
} as const;
export type SecretRefRule = keyof typeof SECRET_REF_RULES;

/** Absolute, normalised directories. Build with storedSecretPolicy or storedSecretPolicyFromConfig. */
export interface StoredSecretPolicy {
  readonly roots: readonly string[];
  readonly excluded: readonly string[];
}

/** The settings a policy is made from (a subset of Config, typed here so this module needs no schema import). */
export interface SecretRootSettings {
  EHR_SECRET_ROOTS?: string | undefined;
  EHR_SECRETS_DIR: string;
  EHR_KEK_DIR: string;
}

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(`${dir}/`);
}

/** The problem with EHR_SECRET_ROOTS (`:`-separated directories), or undefined. For the config schema. */
export function secretRootsProblem(value: string): string | undefined {
  const entries = value.split(':');
  if (entries.some((e) => e.trim() === '')) return 'expected directories separated by ":" (no empty entry)';
  for (const entry of entries.map((e) => path.resolve(e.trim()))) {
    if (entry === '/') return 'a secret root must not be "/"';
    if (SYSTEM_PATHS.some((s) => isUnder(entry, s))) return 'a secret root must not lie under /proc, /sys or /dev';
  }
  return undefined;
}

/** Normalises roots and exclusions to absolute paths; refuses a root that lies inside an excluded path. */
export function storedSecretPolicy(input: {
  roots: readonly string[];
  excluded?: readonly string[];
}): StoredSecretPolicy {
  const roots = [...new Set(input.roots.map((r) => path.resolve(r)))];
  const excluded = [...new Set((input.excluded ?? []).map((e) => path.resolve(e)))];
  for (const root of roots) {
    const problem = secretRootsProblem(root);
    if (problem) throw new ConfigError('EHR_SECRET_ROOTS', problem);
    if (excluded.some((e) => isUnder(root, e))) {
      throw new ConfigError(
        'EHR_SECRET_ROOTS',
        'a secret root must not lie inside EHR_KEK_DIR or the database password file',
      );
    }
  }
  return { roots, excluded };
}

/**
 * The policy of a process's configuration: roots EHR_SECRETS_DIR (registration and rotation write the
 * secrets they generate there) and the directories of EHR_SECRET_ROOTS;
 * excluded the KEK directory and the database password file (PGPASSFILE, or libpq's ~/.pgpass).
 */
export function storedSecretPolicyFromConfig(
  settings: SecretRootSettings,
  env: Record<string, string | undefined> = process.env,
): StoredSecretPolicy {
  const extra = settings.EHR_SECRET_ROOTS ? settings.EHR_SECRET_ROOTS.split(':').map((r) => r.trim()) : [];
  const roots = [settings.EHR_SECRETS_DIR, ...extra];
  const excluded = [
    settings.EHR_KEK_DIR,
    path.join(os.homedir(), '.pgpass'),
    ...(env.PGPASSFILE ? [env.PGPASSFILE] : []),
  ];
  return storedSecretPolicy({ roots, excluded });
}

/** The first rule a path breaks, by the lexical rules the database applies too. */
export function lexicalPathProblem(target: string, policy: StoredSecretPolicy): SecretRefRule | undefined {
  if (!target.startsWith('/')) return 'relative-path';
  if (target.endsWith('/') || target.includes('//') || path.posix.normalize(target) !== target) return 'not-normalised';
  if (SYSTEM_PATHS.some((s) => isUnder(target, s))) return 'system-path';
  if (policy.excluded.some((e) => isUnder(target, e))) return 'excluded-path';
  if (!policy.roots.some((r) => target !== r && isUnder(target, r))) return 'outside-secret-roots';
  return undefined;
}

/**
 * The first rule `ref` breaks by the lexical rules alone (what the database's stored_secret_ref_problem
 * answers for the same policy), or undefined. No filesystem access.
 */
export function storedSecretRefRule(ref: string, policy: StoredSecretPolicy): SecretRefRule | undefined {
  const parsed =
    typeof ref === 'string' && Array.from(ref).length <= 2048 && !CONTROL.test(ref) ? parseSecretRef(ref) : undefined;
  if (!parsed) return 'not-a-reference';
  if (parsed.scheme === 'env') return VENDOR_SECRET_ENV.test(parsed.target) ? undefined : 'env-prefix';
  if (parsed.scheme !== 'file') return undefined;
  return lexicalPathProblem(parsed.target, policy);
}

function realpathOr(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return p;
  }
}

/**
 * Refuses (SecretRefRefusedError, naming `field` and the rule) a reference an integration may not
 * store or use, and returns the reference to read: for `file:`, the file's realpath, so what is read
 * is what was checked. Call it at registration and restore, and again before every use.
 */
export function assertStoredSecretRefAllowed(ref: string, opts: { field: string; policy: StoredSecretPolicy }): string {
  const refuse = (rule: SecretRefRule): never => {
    throw new SecretRefRefusedError(opts.field, rule, SECRET_REF_RULES[rule]);
  };
  const lexical = storedSecretRefRule(ref, opts.policy);
  if (lexical) return refuse(lexical);
  const parsed = parseSecretRef(ref)!;
  if (parsed.scheme !== 'file') return ref;
  let real: string;
  let stat: fs.Stats;
  try {
    real = fs.realpathSync.native(parsed.target);
    stat = fs.statSync(real);
  } catch (err) {
    throw new ConfigError(
      opts.field,
      `the file its reference names cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (real !== parsed.target) {
    const { roots, excluded } = opts.policy;
    const resolved = {
      roots: [...roots, ...roots.map(realpathOr)],
      excluded: [...excluded, ...excluded.map(realpathOr)],
    };
    if (lexicalPathProblem(real, resolved)) return refuse('symlink-escape');
  }
  if (stat.isFile() && stat.nlink > 1) return refuse('hard-link');
  return `file:${real}`;
}

/** A stored reference and the field it was stored in (for messages and audit rows). */
export interface StoredSecretRef {
  field: string;
  ref: string;
}

/** The keys of an integration's TLS references that hold references (lib/vendors/tls-options.ts VendorTlsRefs). */
export const TLS_REF_KEYS = ['caRef', 'clientCertRef', 'clientKeyRef'] as const;
type TlsRefKey = (typeof TLS_REF_KEYS)[number];

/** The references a row of TLS material stores, by field (`tls.caRef` …). */
export function tlsRefFields(refs: Partial<Record<TlsRefKey, string>> | null | undefined): StoredSecretRef[] {
  if (!refs) return [];
  return TLS_REF_KEYS.flatMap((k) => (refs[k] === undefined ? [] : [{ field: `tls.${k}`, ref: refs[k] }]));
}
