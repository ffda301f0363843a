/**
 * pino with three layers of protection (DESIGN §4 invariants 1 and 11). Loggers are constructed
 * only by process entry points (workers/, client/); library code receives a Logger.
 *
 * 1. `redact` censors every known sensitive path (authorization headers, cookies, tokens,
 *    assertions, passwords, private keys, client secrets, DATABASE_URL…), top level and one deep.
 * 2. `formatters.log`, `hooks.logMethod` and `child()` bindings run every logged object through
 *    `sanitizeForLog`: at any depth, secret-named keys are censored, PHI-bearing keys (name,
 *    telecom, address, birthDate, identifier, text, note…) are censored, and anything that looks
 *    like a whole FHIR resource or Bundle is refused — replaced by
 *    `{ resourceType, id: '[redacted]', refused: 'fhir-resource' }`.
 * 3. Strings (messages and values) have PEM private keys, bearer tokens and URL passwords scrubbed.
 *
 * Nothing here makes it right to log PHI: we log ids, counts and codes only. This is the net.
 */
import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export const CENSOR = '[redacted]';
export const PHI_CENSOR = '[phi-redacted]';

const SENSITIVE_KEYS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'cookies',
  'set-cookie',
  'x-sandbox-admin',
  'x-api-key',
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'id_token',
  'idToken',
  'token',
  'adminToken',
  'client_assertion',
  'clientAssertion',
  'assertion',
  'client_secret',
  'clientSecret',
  'webhookSecret',
  'secret',
  'secrets',
  'password',
  'passwd',
  'passphrase',
  'privateKey',
  'private_key',
  'privateKeyPem',
  'apiKey',
  'api_key',
  'databaseUrl',
  'DATABASE_URL',
  'connectionString',
  'CODEC_TLS_KEY',
  'CODEC_AUTH_ISSUER_KEY',
  'kek',
  'dek',
  'dataKey',
];

/** pino redact paths: each sensitive key at the top level, one level down, and under headers. */
export const redactedPaths: string[] = SENSITIVE_KEYS.flatMap((key) => {
  const prop = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `["${key}"]`;
  const top = prop.startsWith('.') ? key : prop;
  return [top, `*${prop}`, `headers${prop}`, `*.headers${prop}`, `req.headers${prop}`, `res.headers${prop}`];
});

const SENSITIVE_KEY_SET = new Set(SENSITIVE_KEYS.map((k) => k.toLowerCase()));
/** Names that point at a secret (a reference, a path, a URL of an endpoint) rather than hold one. */
const REFERENCE_KEY = /(ref|dir|path|file|url|uri|endpoint|id|kid|alg|type|expiresat|expires_in|ttl|count|ms)$/i;
const SECRETISH_KEY = /secret|passw|token|private_?key|credential|assertion|cookie/i;

/** Keys whose values are PHI in FHIR or in our own shapes. Matched case-insensitively, exactly. */
export const PHI_KEYS: readonly string[] = [
  'name',
  'names',
  'given',
  'family',
  'telecom',
  'phone',
  'email',
  'address',
  'line',
  'postalCode',
  'birthDate',
  'dob',
  'dateOfBirth',
  'identifier',
  'mrn',
  'ssn',
  'text',
  'div',
  'note',
  'notes',
  'photo',
  'contact',
  'display',
  'patientName',
  'plaintext',
  'body',
  'rawBody',
  'responseBody',
];
const PHI_KEY_SET = new Set(PHI_KEYS.map((k) => k.toLowerCase()));

export function isSensitiveKey(key: string): boolean {
  const k = key.toLowerCase();
  if (SENSITIVE_KEY_SET.has(k)) return true;
  if (REFERENCE_KEY.test(key)) return false;
  return SECRETISH_KEY.test(key);
}

export function isPhiKey(key: string): boolean {
  return PHI_KEY_SET.has(key.toLowerCase());
}

/** A whole FHIR resource: `resourceType` plus an `id` or `meta`, or any Bundle. */
export function looksLikeFhirResource(value: Record<string, unknown>): boolean {
  if (typeof value.resourceType !== 'string') return false;
  return value.resourceType === 'Bundle' || 'id' in value || 'meta' in value || 'entry' in value;
}

const PEM_PRIVATE_KEY = /-----BEGIN ((?:RSA |EC |ENCRYPTED |OPENSSH )?PRIVATE KEY)-----[\s\S]*?(?:-----END \1-----|$)/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*):[^@\s/]*@/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;

/** Removes secret material that can hide inside free text: PEM private keys, bearer tokens, JWTs, URL passwords. */
export function scrubString(value: string): string {
  if (value.length < 8) return value;
  return value
    .replace(PEM_PRIVATE_KEY, '[redacted private key]')
    .replace(BEARER, (_m, scheme: string) => `${scheme} ${CENSOR}`)
    .replace(JWT, '[redacted jwt]')
    .replace(URL_PASSWORD, (_m, head: string) => `${head}:${CENSOR}@`);
}

const MAX_DEPTH = 8;

/**
 * The log-safe form of any value: secret keys and PHI keys censored at any depth, FHIR resources
 * refused, binary replaced by its length, strings scrubbed. Errors pass through to pino's error
 * serializer with a scrubbed message (EhrError messages carry identifiers only by construction).
 */
export function sanitizeForLog(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (value instanceof Error) {
    const message = scrubString(value.message);
    const stack = typeof value.stack === 'string' ? scrubString(value.stack) : undefined;
    // Unchanged errors go to pino's err serializer as they are; never mutate the caller's error.
    if (message === value.message && stack === value.stack) return value;
    const copy = new Error(message);
    copy.name = value.name;
    copy.stack = stack;
    return copy;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[binary ${value.byteLength} bytes]`;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[depth limit]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => sanitizeForLog(v, depth + 1, seen));
    if (value instanceof Map) return sanitizeForLog(Object.fromEntries(value), depth, seen);
    if (value instanceof Set) return sanitizeForLog([...value], depth, seen);
    const record = value as Record<string, unknown>;
    if (looksLikeFhirResource(record)) {
      const type = /^[A-Z][A-Za-z]{1,63}$/.test(record.resourceType as string) ? record.resourceType : CENSOR;
      return { resourceType: type, id: CENSOR, refused: 'fhir-resource' };
    }
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(record)) {
      if (isSensitiveKey(key)) out[key] = CENSOR;
      else if (isPhiKey(key)) out[key] = PHI_CENSOR;
      else out[key] = sanitizeForLog(child, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

function sanitizeRecord(obj: Record<string, unknown>): Record<string, unknown> {
  const clean = sanitizeForLog(obj);
  return clean !== null && typeof clean === 'object' && !Array.isArray(clean) && !(clean instanceof Error)
    ? (clean as Record<string, unknown>)
    : { value: clean };
}

/** The pino options that implement the protections above (exported for tests and other entry points). */
export function safeLoggerOptions(): Pick<pino.LoggerOptions, 'redact' | 'formatters' | 'hooks'> {
  return {
    redact: { paths: redactedPaths, censor: CENSOR },
    formatters: {
      log: sanitizeRecord,
    },
    hooks: {
      // Every argument: objects sanitised (a FHIR resource logged as the merge object or as a
      // %j/%o interpolation argument is refused), strings scrubbed, the message included.
      logMethod(args, method) {
        const clean = args.map((arg) => sanitizeForLog(arg)) as Parameters<typeof method>;
        return method.apply(this, clean);
      },
    },
  };
}

export function createLogger(options: { level: string; name: string; destination?: pino.DestinationStream }): Logger {
  const logger = pino(
    { level: options.level, name: options.name, base: { pid: process.pid }, ...safeLoggerOptions() },
    options.destination ?? pino.destination(2),
  );
  // pino never runs child bindings through formatters.bindings; sanitise them here. Children are
  // created with Object.create(parent), so they inherit this `child` too.
  const pinoChild = logger.child as unknown as (
    this: Logger,
    bindings: pino.Bindings,
    childOptions?: pino.ChildLoggerOptions,
  ) => Logger;
  logger.child = function child(this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions): Logger {
    return pinoChild.call(this, sanitizeRecord(bindings), childOptions);
  } as unknown as Logger['child'];
  return logger;
}
