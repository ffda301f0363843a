/**
 * Secrets by reference (DESIGN §4 invariant 11). A secret is never written into configuration; the
 * configuration names where it lives:
 *
 *   file:<absolute path>   a regular file that group and others cannot read or write (chmod 600 /
 *                          Kubernetes `defaultMode: 0400`); one trailing newline is ignored.
 *   env:<VAR>              an environment variable of the process.
 *   <scheme>:<locator>     an external secret manager (e.g. `vault:kv/ehr#db-url`,
 *                          `aws-sm:arn:aws:secretsmanager:…`) registered with
 *                          `registerSecretManager`; none is built in.
 *
 * Errors are ConfigErrors that name the configuration field and the reference (a path or a variable
 * name), never the secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors/index.js';

export interface SecretManager {
  /** The reference scheme this manager answers, without the colon: `vault`, `aws-sm`, … */
  readonly scheme: string;
  /** The secret's value for `ref` (the whole reference, scheme included). */
  resolve(ref: string): Promise<string>;
}

const BUILT_IN = new Set(['file', 'env']);
const managers = new Map<string, SecretManager>();
const SCHEME = /^([a-z][a-z0-9-]{1,31}):(?!\/\/)(.+)$/s;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function registerSecretManager(manager: SecretManager): void {
  if (!/^[a-z][a-z0-9-]{1,31}$/.test(manager.scheme) || BUILT_IN.has(manager.scheme)) {
    throw new ConfigError('secret manager', `cannot register scheme ${JSON.stringify(manager.scheme)}`);
  }
  managers.set(manager.scheme, manager);
}

export function unregisterSecretManager(scheme: string): void {
  managers.delete(scheme);
}

export interface ParsedSecretRef {
  scheme: string;
  /** The path (file:), variable name (env:) or manager-specific locator. */
  target: string;
}

/**
 * A secret reference, or undefined for anything else (a literal). `postgres://…` and other
 * `scheme://` URLs are literals, never references.
 */
export function parseSecretRef(value: string): ParsedSecretRef | undefined {
  const m = SCHEME.exec(value);
  if (!m) return undefined;
  return { scheme: m[1]!, target: m[2]! };
}

export function isSecretRef(value: string): boolean {
  return parseSecretRef(value) !== undefined;
}

export interface ResolveOptions {
  /** Configuration field the reference came from, for error messages. */
  field?: string;
  /**
   * Public material (certificates, CA bundles, public keys) read through the same references: a
   * group- or world-readable file is fine. Everything else is a secret and must be 0600.
   */
  shareable?: boolean;
  /** Where `env:` references are looked up (default process.env). */
  env?: Record<string, string | undefined>;
}

/** Checks a reference is well formed and, for file: and env:, that it can be read; reads nothing else. */
export function checkSecretRef(ref: string, options: ResolveOptions = {}): ParsedSecretRef {
  const field = options.field ?? 'secret reference';
  const parsed = parseSecretRef(ref);
  if (!parsed)
    throw new ConfigError(
      field,
      'must be a secret reference (file:<absolute path>, env:<VAR> or a registered secret manager scheme)',
    );
  if (parsed.scheme === 'file') statSecretFile(parsed.target, field, options.shareable);
  else if (parsed.scheme === 'env') readEnv(parsed.target, field, options.env ?? process.env);
  return parsed;
}

/** Resolves file: and env: references synchronously (for loadConfig); other schemes need resolveSecret. */
export function resolveSecretSync(ref: string, options: ResolveOptions = {}): string {
  const field = options.field ?? 'secret reference';
  const parsed = checkSecretRef(ref, options);
  if (parsed.scheme === 'file') return readSecretFile(parsed.target, field, options.shareable);
  if (parsed.scheme === 'env') return unescapePem(readEnv(parsed.target, field, options.env ?? process.env));
  throw new ConfigError(
    field,
    `${parsed.scheme}: references are resolved asynchronously (resolveSecret / loadConfigWithSecrets), not here`,
  );
}

/** Resolves any reference: file:, env:, or a registered secret manager's scheme. */
export async function resolveSecret(ref: string, options: ResolveOptions = {}): Promise<string> {
  const field = options.field ?? 'secret reference';
  const parsed = parseSecretRef(ref);
  if (parsed && !BUILT_IN.has(parsed.scheme)) {
    const manager = managers.get(parsed.scheme);
    if (!manager) {
      throw new ConfigError(
        field,
        `no secret manager provider registered for scheme ${parsed.scheme}: (built in: file:, env:)`,
      );
    }
    let value: string;
    try {
      value = await manager.resolve(ref);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      // The provider's own message may quote what it fetched: name only the scheme.
      throw new ConfigError(field, `secret manager ${parsed.scheme}: could not resolve the reference`);
    }
    if (typeof value !== 'string' || value === '')
      throw new ConfigError(field, `secret manager ${parsed.scheme}: returned an empty secret`);
    return value;
  }
  return resolveSecretSync(ref, options);
}

function statSecretFile(file: string, field: string, shareable = false): fs.Stats {
  if (!path.isAbsolute(file))
    throw new ConfigError(field, `file: references must name an absolute path (got a relative one)`);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new ConfigError(
      field,
      `secret file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (!st.isFile()) throw new ConfigError(field, `secret file ${file} is not a regular file`);
  const mode = st.mode & 0o777;
  if (!shareable && (mode & 0o077) !== 0) {
    throw new ConfigError(
      field,
      `secret file ${file} has mode 0${mode.toString(8)}; ` +
        `it must not be readable or writable by group or others (chmod 600 it)`,
    );
  }
  return st;
}

function readSecretFile(file: string, field: string, shareable = false): string {
  statSecretFile(file, field, shareable);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      field,
      `secret file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new ConfigError(field, `secret file ${file} is empty`);
  return value;
}

/** PEMs in environment variables often arrive on one line with literal "\n". */
function unescapePem(value: string): string {
  return value.includes('-----BEGIN') && !value.includes('\n') ? value.replace(/\\n/g, '\n') : value;
}

function readEnv(name: string, field: string, env: Record<string, string | undefined>): string {
  if (!ENV_NAME.test(name)) throw new ConfigError(field, 'env: references must name an environment variable');
  const value = env[name];
  if (value === undefined || value === '')
    throw new ConfigError(field, `environment variable ${name} (named by env:${name}) is not set`);
  return value;
}

/** True when `value` holds private key material: a PEM private key or a private JWK. */
export function containsPrivateKeyMaterial(value: string): boolean {
  if (/-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----/.test(value)) return true;
  const text = value.trim();
  if (!text.startsWith('{')) return false;
  try {
    const jwk = JSON.parse(text) as Record<string, unknown>;
    return typeof jwk.d === 'string' || typeof jwk.k === 'string';
  } catch {
    return false;
  }
}
