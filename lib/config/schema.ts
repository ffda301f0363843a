/**
 * The one configuration schema. Every process (worker, CLI, codec server, tests) validates its
 * environment against it at startup; an invalid or missing value is refused with the field's name.
 * Secrets have no defaults: DATABASE_URL and the key directory must be given explicitly.
 * docker-compose.yml is checked against `configFields` by test/unit/docker-compose.test.ts.
 */
import { z } from 'zod';
import { ConfigError } from '../errors/index.js';

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
  /** Secret (carries a password): no default. */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL'),
  /** Directory of key-encryption-key files (kek-v<N>.key, mode 0600), outside the database. Secret: no default. */
  EHR_KEK_DIR: z.string().min(1),
  /** Where registration writes integrations' private signing keys (0600 files). */
  EHR_SECRETS_DIR: z.string().min(1).default('.data/secrets'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  EHR_VENDOR_TIMEOUT_MS: positiveInt.max(600_000).default(30_000),
  EHR_VENDOR_MAX_RESPONSE_BYTES: positiveInt.default(64 * 1024 * 1024),
  EHR_SYNC_PAGE_SIZE: positiveInt.max(5_000).default(1_000),
  WORKER_MAX_CONCURRENT_ACTIVITIES: positiveInt.max(1_000).default(16),
  WORKER_SHUTDOWN_GRACE_MS: positiveInt.default(30_000),

  // Key hierarchy (lib/security). `local`: key files in EHR_KEK_DIR; `aws-kms`: data keys wrapped by KMS.
  EHR_KEK_PROVIDER: z.enum(['local', 'aws-kms']).default('local'),
  /** KMS key id or ARN (aws-kms only). AWS credentials come from the SDK's default chain, never from here. */
  EHR_AWS_KMS_KEY_ID: z.string().min(1).optional(),
  EHR_AWS_REGION: z.string().min(1).optional(),
  /** A KMS-compatible endpoint (tests: moto's server); omit for AWS. */
  EHR_AWS_KMS_ENDPOINT: z.string().url().optional(),
  /** Minimum time between scheduling a key version's destruction and destroying it. */
  EHR_KEY_DESTROY_DELAY_SECONDS: z.coerce.number().int().nonnegative().default(7 * 24 * 3600),

  // Audit trail (lib/audit): signed checkpoints every N events or T seconds, copied to an anchor outside the database.
  EHR_AUDIT_ANCHOR_PATH: z.string().min(1).default('.data/audit-anchor.jsonl'),
  EHR_AUDIT_CHECKPOINT_EVERY: positiveInt.default(1_000),
  EHR_AUDIT_CHECKPOINT_SECONDS: positiveInt.default(300),

  // Codec server (workers/codec-server.ts), for the Temporal Web UI.
  CODEC_HOST: z.string().min(1).default('127.0.0.1'),
  CODEC_PORT: z.coerce.number().int().min(1).max(65_535).default(8888),
  /** The Web UI's origin, exactly (CORS allows only it), e.g. https://temporal-ui.example.org. */
  CODEC_UI_ORIGIN: z.string().url().optional(),
  /** TLS certificate and key for the codec server: secret references (`file:` or `env:`). */
  CODEC_TLS_CERT: z.string().min(1).optional(),
  CODEC_TLS_KEY: z.string().min(1).optional(),
  /** Bearer-token verification: a JWKS URL, or an issuer public key (JWK or PEM reference). */
  CODEC_AUTH_JWKS_URL: z.string().url().optional(),
  CODEC_AUTH_ISSUER_KEY: z.string().min(1).optional(),
  CODEC_AUTH_ISSUER: z.string().min(1).optional(),
  CODEC_AUTH_AUDIENCE: z.string().min(1).default('ehr-connectors-codec'),
  /** Role (in the token's `roles` claim) allowed to decode payloads. */
  CODEC_DECODE_ROLE: z.string().min(1).default('phi-decoder'),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigField = keyof Config;

/** Field names with whether each must be supplied (no default). */
export const configFields: ReadonlyArray<{ name: ConfigField; required: boolean }> = Object.entries(configSchema.shape).map(
  ([name, schema]) => ({ name: name as ConfigField, required: !(schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) }),
);

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const picked: Record<string, string> = {};
  for (const { name } of configFields) {
    const value = env[name];
    if (value !== undefined && value !== '') picked[name] = value;
  }
  const result = configSchema.safeParse(picked);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.') || 'configuration';
    const problem = issue.code === 'invalid_type' && picked[field] === undefined ? 'is required but not set' : issue.message;
    throw new ConfigError(field, problem);
  }
  return result.data;
}
