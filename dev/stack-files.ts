/**
 * Where the embedded dev stack keeps its state, and the stack.json it publishes when ready.
 * Light on purpose: every ehrctl command reads stack.json (readStackEnv) to find the dev stack.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { isPidAlive } from './process.js';

export const repoRoot = path.resolve(__dirname, '..');

export interface StackPaths {
  dataDir: string;
  stackFile: string;
  lockFile: string;
  logDir: string;
  stackLog: string;
  postgresDir: string;
  temporalDb: string;
  kekDir: string;
  secretsDir: string;
  /** Dev CA, codec server certificate and dev token issuer keys (0700; keys 0600). */
  tlsDir: string;
  /** Signed audit checkpoints copied outside the database (lib/audit/anchor.ts). */
  auditAnchor: string;
}

/** `.data/` at the repository root, or EHR_DEV_DATA_DIR. */
export function stackPaths(env: NodeJS.ProcessEnv = process.env): StackPaths {
  const dataDir = path.resolve(env.EHR_DEV_DATA_DIR || path.join(repoRoot, '.data'));
  const logDir = path.join(dataDir, 'logs');
  return {
    dataDir,
    stackFile: path.join(dataDir, 'stack.json'),
    lockFile: path.join(dataDir, 'stack.lock'),
    logDir,
    stackLog: path.join(logDir, 'stack.log'),
    postgresDir: path.join(dataDir, 'postgres'),
    temporalDb: path.join(dataDir, 'temporal.db'),
    kekDir: path.join(dataDir, 'keys'),
    secretsDir: path.join(dataDir, 'secrets'),
    tlsDir: path.join(dataDir, 'tls'),
    auditAnchor: path.join(dataDir, 'audit-anchor.jsonl'),
  };
}

/** One personality sandbox of the dev stack (the admin token is local and generated, like the main sandbox's). */
export const DevSandbox = z.object({
  personality: z.string(),
  url: z.string(),
  fhirBaseUrl: z.string(),
  adminToken: z.string(),
});
export type DevSandbox = z.infer<typeof DevSandbox>;

export const stackInfoSchema = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string(),
  temporalAddress: z.string(),
  temporalUiUrl: z.string(),
  namespace: z.string(),
  taskQueue: z.string(),
  /** Carries the PostgreSQL password: shown only by `ehrctl dev status --json`. */
  databaseUrl: z.string(),
  sandboxUrl: z.string(),
  sandboxFhirBaseUrl: z.string(),
  sandboxTokenUrl: z.string(),
  sandboxAdminToken: z.string(),
  kekDir: z.string(),
  secretsDir: z.string(),
  workerPid: z.number().int().positive(),
  logDir: z.string(),
  /** The codec server (https) the Web UI decodes through; its certificate is signed by the dev CA below. */
  codecUrl: z.string().optional(),
  codecPid: z.number().int().positive().optional(),
  devCaPath: z.string().optional(),
  /** Our hosted JWKS, served by the worker; sandbox clients are registered with its URL. */
  jwksUrl: z.string().optional(),
  /** The webhook receiver (workers/webhook-receiver.ts): vendors post to `<webhookUrl>/webhooks/<integrationId>`. */
  webhookUrl: z.string().optional(),
  webhookPid: z.number().int().positive().optional(),
  /** The mediation gateway (workers/gateway.ts, HTTPS, dev CA): token URL `<gatewayUrl>/auth/token`, FHIR `/fhir`. */
  gatewayUrl: z.string().optional(),
  gatewayPid: z.number().int().positive().optional(),
  /** Sandboxes impersonating vendors (sandbox/personalities.ts), one per personality. */
  sandboxes: z.array(DevSandbox).optional(),
});
export type StackInfo = z.infer<typeof stackInfoSchema>;

/** stack.json as written, whether or not its daemon still runs; undefined if absent or unreadable. */
export function readStackFile(paths: StackPaths = stackPaths()): StackInfo | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(paths.stackFile, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = stackInfoSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The running stack's stack.json (its daemon pid is alive), else undefined. */
export function readRunningStack(paths: StackPaths = stackPaths()): StackInfo | undefined {
  const info = readStackFile(paths);
  return info && isPidAlive(info.pid) ? info : undefined;
}

/** Written atomically (temp file + rename), mode 0600: it holds the database password and the sandbox admin token. */
export function writeStackFile(info: StackInfo, paths: StackPaths = stackPaths()): void {
  const tmp = `${paths.stackFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, paths.stackFile);
}

export function removeStackFile(paths: StackPaths = stackPaths()): void {
  fs.rmSync(paths.stackFile, { force: true });
}

/** The pid in stack.lock (held by a daemon that is starting or running), if that process is alive. */
export function readLockPid(paths: StackPaths = stackPaths()): number | undefined {
  try {
    const pid = Number(fs.readFileSync(paths.lockFile, 'utf8').trim());
    return isPidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Maps a stack to the configuration variables (lib/config/schema.ts) plus the sandbox's addresses. */
export function stackEnvFromInfo(info: StackInfo): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: info.temporalAddress,
    TEMPORAL_NAMESPACE: info.namespace,
    TEMPORAL_TASK_QUEUE: info.taskQueue,
    DATABASE_URL: info.databaseUrl,
    EHR_KEK_DIR: info.kekDir,
    EHR_SECRETS_DIR: info.secretsDir,
    EHR_AUDIT_ANCHOR_PATH: stackPaths().auditAnchor,
    TEMPORAL_UI_URL: info.temporalUiUrl,
    EHR_SANDBOX_URL: info.sandboxUrl,
    EHR_SANDBOX_FHIR_BASE_URL: info.sandboxFhirBaseUrl,
    EHR_SANDBOX_TOKEN_URL: info.sandboxTokenUrl,
    EHR_SANDBOX_ADMIN_TOKEN: info.sandboxAdminToken,
    ...(info.codecUrl ? { EHR_CODEC_URL: info.codecUrl } : {}),
    ...(info.devCaPath ? { EHR_CODEC_CA: info.devCaPath } : {}),
    ...(info.jwksUrl ? { JWKS_PUBLIC_URL: info.jwksUrl } : {}),
    ...(info.webhookUrl ? { EHR_WEBHOOK_URL: info.webhookUrl } : {}),
    ...(info.gatewayUrl ? { GATEWAY_PUBLIC_URL: info.gatewayUrl } : {}),
    ...(info.sandboxes ? { EHR_SANDBOXES: JSON.stringify(info.sandboxes) } : {}),
  };
}

/**
 * The running dev stack's settings as environment variables, so ehrctl commands work against it
 * without exports (explicit environment variables still win: `{ ...readStackEnv(), ...process.env }`).
 * Undefined when no dev stack is running.
 */
export function readStackEnv(paths: StackPaths = stackPaths()): Record<string, string> | undefined {
  const info = readRunningStack(paths);
  return info ? stackEnvFromInfo(info) : undefined;
}
