/**
 * The one configuration schema. Every process (worker, CLI, codec server, tests) validates its
 * environment against it at startup; an invalid or missing value is refused with the field's name.
 * Secrets have no defaults: DATABASE_URL and the key directory must be given explicitly.
 * docker-compose.yml is checked against `configFields` by test/unit/docker-compose.test.ts.
 *
 * Secrets by reference (DESIGN §4 invariant 11, lib/config/secrets.ts): see SECRET_FIELDS. A value
 * that inlines a secret is refused with the field's name; no error message ever quotes a value.
 */
import { z } from 'zod';
import { ConfigError } from '../errors/index.js';
import {
  checkSecretRef,
  containsPrivateKeyMaterial,
  parseSecretRef,
  resolveSecret,
  resolveSecretSync,
} from './secrets.js';
import { secretRootsProblem, storedSecretPolicyFromConfig } from './stored-secret-refs.js';

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'expected host:port')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, 'port must be 1-65535')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) >= 1, 'port must be 1-65535');
const positiveInt = z.coerce.number().int().positive();

export const configSchema = z.object({
  TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).max(200).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).max(200).default('ehr-connectors'),
  /**
   * Secret (carries a password): no default. A literal URL is accepted only without a password or
   * for a loopback host (the embedded dev/test database); otherwise give `file:`/`env:` (SECRET_FIELDS).
   */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL'),
  /** Directory of key-encryption-key files (kek-v<N>.key, mode 0600), outside the database. Secret: no default. */
  EHR_KEK_DIR: z.string().min(1),
  /** Where registration writes integrations' private signing keys (0600 files). */
  EHR_SECRETS_DIR: z.string().min(1).default('.data/secrets'),
  /**
   * Further directories (`:`-separated) that `file:` secret references stored for integrations may point
   * into, beside EHR_SECRETS_DIR. Never `/`, /proc, /sys, /dev or inside EHR_KEK_DIR
   * (lib/config/stored-secret-refs.ts).
   */
  EHR_SECRET_ROOTS: z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      const problem = secretRootsProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  EHR_VENDOR_TIMEOUT_MS: positiveInt.max(600_000).default(30_000),
  EHR_VENDOR_MAX_RESPONSE_BYTES: positiveInt.default(64 * 1024 * 1024),
  EHR_SYNC_PAGE_SIZE: positiveInt.max(5_000).default(1_000),
  WORKER_MAX_CONCURRENT_ACTIVITIES: positiveInt.max(1_000).default(16),
  WORKER_SHUTDOWN_GRACE_MS: positiveInt.default(30_000),
  /**
   * How long a workflow's next task waits on the sticky queue of the worker that ran its last one before any
   * worker may take it; after a worker dies, its workflows wait this long. Unset: the Temporal SDK's 10 s.
   */
  WORKER_STICKY_QUEUE_TIMEOUT_MS: positiveInt.max(60_000).optional(),
  /**
   * A workflow bundle built ahead of time (writeWorkflowBundle in workers/workflow-bundle.ts, from the same
   * checkout): the worker loads it instead of bundling workflows/ at every start. Unset: bundled at start.
   */
  WORKER_WORKFLOW_BUNDLE: z.string().min(1).optional(),

  // Resilient vendor HTTP (lib/vendors/circuit-breaker.ts, lib/vendors/endpoint-queues.ts).
  /** Circuit breaker preset per integration: standard (5 failures, 30 s), tolerant (10, 60 s), strict (3, 15 s). */
  EHR_CIRCUIT_BREAKER: z.enum(['standard', 'tolerant', 'strict']).default('standard'),
  /** Overrides the preset's cool-down (ms); for tests and incident response. */
  EHR_CIRCUIT_COOLDOWN_MS: positiveInt.max(3_600_000).optional(),
  /**
   * Overrides of vendors' published request limits, `vendor=requests/seconds[,…]`, e.g.
   * `eclinicalworks=200/60` (a contract with a lower limit, or a test that cannot wait minutes).
   */
  EHR_VENDOR_RATE_LIMITS: z
    .string()
    .regex(
      /^[a-z][a-z0-9-]{1,31}=\d{1,6}\/\d{1,5}(,[a-z][a-z0-9-]{1,31}=\d{1,6}\/\d{1,5})*$/,
      'expected vendor=requests/seconds[,…]',
    )
    .optional(),
  /** How often workers look for new rate-limited vendor endpoints to serve (seconds). */
  EHR_ENDPOINT_QUEUE_RECHECK_SECONDS: positiveInt.max(3_600).default(10),
  /**
   * How long a worker keeps an integration's row (and so its current signing kid) in memory. A signing-key
   * rotation waits this long (as the worker running its step has it) before it retires the old key.
   */
  EHR_CREDENTIAL_CACHE_SECONDS: positiveInt.max(300).default(15),

  // Key hierarchy (lib/keys). `local`: key files in EHR_KEK_DIR; `aws-kms`: data keys wrapped by KMS.
  EHR_KEK_PROVIDER: z.enum(['local', 'aws-kms']).default('local'),
  /** KMS key id or ARN (aws-kms only). AWS credentials come from the SDK's default chain, never from here. */
  EHR_AWS_KMS_KEY_ID: z.string().min(1).optional(),
  EHR_AWS_REGION: z.string().min(1).optional(),
  /** A KMS-compatible endpoint (tests: moto's server); omit for AWS. */
  EHR_AWS_KMS_ENDPOINT: z.string().url().optional(),
  /** Minimum time between scheduling a key version's destruction and destroying it. */
  EHR_KEY_DESTROY_DELAY_SECONDS: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(7 * 24 * 3600),

  // Audit trail (lib/audit): signed checkpoints every N events or T seconds, copied to an anchor outside the database.
  EHR_AUDIT_ANCHOR_PATH: z.string().min(1).default('.data/audit-anchor.jsonl'),
  EHR_AUDIT_CHECKPOINT_EVERY: positiveInt.default(1_000),
  EHR_AUDIT_CHECKPOINT_SECONDS: positiveInt.default(300),
  /**
   * Whether this worker writes checkpoints. Exactly one process per anchor may (every checkpoint must
   * reach the anchor): with several worker replicas, turn it on in one of them only.
   */
  EHR_AUDIT_CHECKPOINT_WRITER: z.enum(['on', 'off']).default('on'),

  // Codec server (workers/codec-server.ts), for the Temporal Web UI.
  CODEC_HOST: z.string().min(1).default('127.0.0.1'),
  CODEC_PORT: z.coerce.number().int().min(1).max(65_535).default(8888),
  /** The Web UI's origin, exactly (CORS allows only it), e.g. https://temporal-ui.example.org. */
  CODEC_UI_ORIGIN: z.string().url().optional(),
  /** TLS certificate (a reference or a literal PEM) and private key (a secret reference only) for the codec server. */
  CODEC_TLS_CERT: z.string().min(1).optional(),
  CODEC_TLS_KEY: z.string().min(1).optional(),
  /**
   * Bearer-token verification: a JWKS URL, or an issuer PUBLIC key (JWK or PEM, literal or reference; a
   * private key is refused).
   */
  CODEC_AUTH_JWKS_URL: z.string().url().optional(),
  CODEC_AUTH_ISSUER_KEY: z.string().min(1).optional(),
  CODEC_AUTH_ISSUER: z.string().min(1).optional(),
  CODEC_AUTH_AUDIENCE: z.string().min(1).default('ehr-connectors-codec'),
  /** Role (in the token's `roles` claim) allowed to decode payloads. */
  CODEC_DECODE_ROLE: z.string().min(1).default('phi-decoder'),
  /**
   * Role allowed to encode (mint ciphertext under the payload key that workers will trust); granted to no one
   * by default.
   */
  CODEC_ENCODE_ROLE: z.string().min(1).default('payload-encoder'),

  // Webhook receiver (workers/webhook-receiver.ts): POST /webhooks/<integrationId>, plain HTTP (put TLS in
  // front of it).
  WEBHOOK_HOST: z.string().min(1).default('127.0.0.1'),
  WEBHOOK_PORT: z.coerce.number().int().min(0).max(65_535).default(8891),
  /** Larger deliveries are refused with 413 before anything else is read. */
  WEBHOOK_MAX_BODY_BYTES: positiveInt.max(16 * 1024 * 1024).default(1024 * 1024),
  /** Retry-After (seconds) on a delivery refused with 503 while an incident holds its scope. */
  WEBHOOK_RETRY_AFTER_SECONDS: positiveInt.max(86_400).default(300),
  /** How long the delta-sync workflow gathers notifications before it syncs them as one batch. */
  WEBHOOK_DEBOUNCE_SECONDS: positiveInt.max(3_600).default(10),

  // Hosted JWKS (workers/jwks-server.ts): integrations' public signing keys for vendors. Off unless set.
  /** host:port the worker serves `GET /jwks/<integrationId>.json` on (plain HTTP: put TLS in front of it). */
  JWKS_LISTEN: hostPort.optional(),
  /**
   * The URL vendors fetch it from (registration prints and registers `<this>/jwks/<id>.json`); default
   * http://JWKS_LISTEN.
   */
  JWKS_PUBLIC_URL: z.string().url().optional(),
  // Mediation gateway (workers/gateway.ts): consumers' SMART Backend Services token endpoint and FHIR reads.
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PORT: z.coerce.number().int().min(0).max(65_535).default(8892),
  /**
   * The URL consumers reach the gateway at (its token URL, the audience of their assertions, is
   * `<this>/auth/token`; the FHIR base `<this>/fhir`); default http(s)://GATEWAY_HOST:GATEWAY_PORT.
   */
  GATEWAY_PUBLIC_URL: z
    .string()
    .url()
    .refine((v) => !/[?#]/.test(v) && !v.endsWith('/'), 'no query, fragment or trailing slash')
    .optional(),
  /** Lifetime of the access tokens the gateway issues (seconds). */
  GATEWAY_ACCESS_LIFETIME_SECONDS: positiveInt.max(3_600).default(300),
  /** The gateway's Ed25519 key (PKCS#8 PEM) that signs access tokens: a secret reference only, no default. */
  GATEWAY_ACCESS_SIGNING_KEY: z.string().min(1).optional(),
  /** TLS certificate (reference or literal PEM) and key (a secret reference only); without them plain HTTP. */
  GATEWAY_TLS_CERT: z.string().min(1).optional(),
  GATEWAY_TLS_KEY: z.string().min(1).optional(),
  // Break-glass (lib/gateway/break-glass.ts, workflows/break-glass-review.ts).
  /**
   * Where break-glass alerts are POSTed (JSON, ids only): a secret reference (`file:`/`env:`) to an https URL, or
   * http to a loopback host. Unset: the structured log event is the only alert.
   */
  EHR_BREAK_GLASS_ALERT_URL: z.string().min(1).optional(),
  /** Longest break-glass grant, in minutes (never more than a day). */
  EHR_BREAK_GLASS_MAX_MINUTES: positiveInt.max(1_440).default(240),
  /** A grant not reviewed this long after it was made: a reminder (log and alert hook). */
  EHR_BREAK_GLASS_REMIND_SECONDS: positiveInt.max(30 * 86_400).default(4 * 3_600),
  /** Not reviewed this long after it was made (longer than the reminder): escalated (log and alert hook). */
  EHR_BREAK_GLASS_ESCALATE_SECONDS: positiveInt.max(90 * 86_400).default(24 * 3_600),
  // Reconciliation conflicts (workflows/conflict-resolution.ts): alerts go to EHR_BREAK_GLASS_ALERT_URL's hook.
  /** A conflict not resolved this long after it was opened: a reminder (log and alert hook). */
  EHR_CONFLICT_REMIND_SECONDS: positiveInt.max(30 * 86_400).default(24 * 3_600),
  /** Not resolved this long after it was opened (longer than the reminder): escalated (log and alert hook). */
  EHR_CONFLICT_ESCALATE_SECONDS: positiveInt.max(90 * 86_400).default(3 * 86_400),
  /**
   * Dev stack only: JSON `[{"fhirBaseUrl","url","adminToken"}]` of its sandboxes, so incident recovery
   * (a drill) can register restored credentials there. Real vendors need none.
   */
  EHR_DEV_SANDBOX_ADMINS: z.string().optional(),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigField = keyof Config;

/** Field names with whether each must be supplied (no default). */
export const configFields: ReadonlyArray<{ name: ConfigField; required: boolean }> = Object.entries(
  configSchema.shape,
).map(([name, schema]) => ({
  name: name as ConfigField,
  required: !(schema instanceof z.ZodDefault || schema instanceof z.ZodOptional),
}));

/**
 * Fields that hold secrets, and how they must be given:
 *  - `reference`: only as a secret reference (`file:` 0600, `env:`, or a registered manager
 *    scheme). The reference is checked at load (file exists and is private, variable is set) and
 *    stays a reference in Config: its user resolves it with resolveSecret() when needed, so the
 *    secret is not copied around with the configuration.
 *  - `database-url`: a literal postgres URL is accepted when it has no password (PGPASSFILE /
 *    ~/.pgpass supply one) or its host is loopback (the embedded dev/test database, reachable only
 *    from this machine); any other literal with a password is refused. A reference is resolved at
 *    load, and the Config holds the resolved URL (every database client needs the URL itself).
 * Every other field is refused if its literal value contains private key material.
 */
export const SECRET_FIELDS: Readonly<Partial<Record<ConfigField, 'reference' | 'database-url'>>> = {
  DATABASE_URL: 'database-url',
  CODEC_TLS_KEY: 'reference',
  GATEWAY_ACCESS_SIGNING_KEY: 'reference',
  GATEWAY_TLS_KEY: 'reference',
  EHR_BREAK_GLASS_ALERT_URL: 'reference',
};

const LOOPBACK_HOSTS = new Set(['localhost', '::1', '[::1]']);

/** True for `localhost`, 127.0.0.0/8, ::1, and socket-directory URLs (no host at all). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === '' || LOOPBACK_HOSTS.has(host) || /^127(?:\.\d{1,3}){3}$/.test(host);
}

export function inlinePasswordProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined; // the schema reports the malformed URL
  }
  const password = parsed.password !== '' || (parsed.searchParams.get('password') ?? '') !== '';
  const socketDir = (parsed.searchParams.get('host') ?? '').startsWith('/');
  if (!password || isLoopbackHost(parsed.hostname) || (parsed.hostname === '' && socketDir)) return undefined;
  return (
    `inlines a database password for host ${parsed.hostname}; ` +
    `literal passwords are accepted only for loopback hosts. ` +
    'Give the URL by reference (DATABASE_URL=file:/run/secrets/database-url with mode 0600, or env:<VAR>), ' +
    'or leave the password out of the URL and supply it through PGPASSFILE'
  );
}

function pick(env: Record<string, string | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const { name } of configFields) {
    const value = env[name];
    if (value !== undefined && value !== '') picked[name] = value;
  }
  return picked;
}

/**
 * Validates the environment and applies the secret rules (SECRET_FIELDS). Synchronous: `file:` and
 * `env:` references of fields resolved at load are read here; an external manager's reference in
 * such a field needs loadConfigWithSecrets.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  return loadPicked(pick(env), env, new Set());
}

/** loadConfig, first resolving registered secret managers' references of fields resolved at load. */
export async function loadConfigWithSecrets(env: Record<string, string | undefined> = process.env): Promise<Config> {
  const picked = pick(env);
  const resolved = new Set<ConfigField>();
  for (const [field, rule] of Object.entries(SECRET_FIELDS) as Array<[ConfigField, string]>) {
    const value = picked[field];
    const ref = value === undefined ? undefined : parseSecretRef(value);
    if (rule === 'database-url' && ref && ref.scheme !== 'file' && ref.scheme !== 'env') {
      picked[field] = await resolveSecret(value!, { field, env });
      resolved.add(field);
    }
  }
  return loadPicked(picked, env, resolved);
}

function loadPicked(
  picked: Record<string, string>,
  env: Record<string, string | undefined>,
  alreadyResolved: Set<ConfigField>,
): Config {
  const fromReference = new Set<ConfigField>(alreadyResolved);
  for (const [field, value] of Object.entries(picked) as Array<[ConfigField, string]>) {
    const rule = SECRET_FIELDS[field];
    if (rule === 'database-url' && !fromReference.has(field) && parseSecretRef(value)) {
      picked[field] = resolveSecretSync(value, { field, env });
      fromReference.add(field);
    } else if (rule === 'reference') {
      if (!parseSecretRef(value)) {
        throw new ConfigError(
          field,
          'is a secret and must be given by reference (file:<absolute path> with mode 0600, or env:<VAR>), not inline',
        );
      }
      checkSecretRef(value, { field, env });
    } else if (!fromReference.has(field) && containsPrivateKeyMaterial(value)) {
      throw new ConfigError(
        field,
        'inlines a private key; give it by reference (file:<absolute path> with mode 0600, or env:<VAR>)',
      );
    }
  }
  const result = configSchema.safeParse(picked);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.') || 'configuration';
    const problem =
      issue.code === 'invalid_type' && picked[field] === undefined ? 'is required but not set' : issue.message;
    const via = fromReference.has(field as ConfigField) ? ' (in the value its secret reference names)' : '';
    throw new ConfigError(field, `${problem}${via}`);
  }
  if (!fromReference.has('DATABASE_URL')) {
    const problem = inlinePasswordProblem(result.data.DATABASE_URL);
    if (problem) throw new ConfigError('DATABASE_URL', problem);
  }
  storedSecretPolicyFromConfig(result.data, env); // refuses a secret root inside EHR_KEK_DIR
  return result.data;
}
