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
});

export type Config = z.infer<typeof configSchema>;
export type ConfigField = keyof Config;

/** Field names with whether each must be supplied (no default). */
export const configFields: ReadonlyArray<{ name: ConfigField; required: boolean }> = Object.entries(configSchema.shape).map(
  ([name, schema]) => ({ name: name as ConfigField, required: !(schema instanceof z.ZodDefault) }),
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
