/**
 * The embedded dev stack's daemon, spawned detached by `ehrctl dev up` (node --import tsx, stdio to
 * .data/logs/stack.log). It starts, in order: PostgreSQL (+ migrations) and the Temporal dev server
 * with its Web UI (in parallel; the UI is pointed at the codec server with --ui-codec-endpoint), the KEK
 * and secrets dirs, the sandbox vendor (in-process), the codec server (child process, HTTPS with the dev
 * CA under .data/tls/), the worker, the webhook receiver and the gateway (child processes, the gateway over HTTPS
 * with the dev CA); then writes .data/stack.json and stays up. SIGTERM/SIGINT stop the gateway, the webhook
 * receiver, the worker (drain), codec server, sandbox, Temporal
 * and PostgreSQL in that order, remove stack.json and exit 0. If a part fails to start, what was started is
 * stopped, the reason is logged and the exit code is 1. Progress is logged as JSON lines with `part` and
 * `phase`, which `dev up` relays. Our own processes (codec server, worker, webhook receiver) are started by
 * stack-services.ts; the lock is stack-lock.ts; this file owns the order, the signals and the stack file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { configSchema } from '../lib/config/schema.js';
import { createLogger } from '../lib/log/logger.js';
import { ensureLocalKekDir } from '../lib/keys/local-kek.js';
import { migrateUp } from '../lib/store/migrate.js';
import { ensureAppLoginRole } from '../lib/store/roles.js';
import { writeSecretRoots } from '../lib/store/secret-roots.js';
import { storedSecretPolicyFromConfig } from '../lib/config/stored-secret-refs.js';
import { startSandbox } from '../sandbox/index.js';
import { PERSONALITY_IDS, isPersonalityId, type PersonalityId } from '../sandbox/personalities.js';
import { ensureDevCodecMaterial } from './dev-codec-material.js';
import { DevSetupError } from './errors.js';
import { findFreePort } from './ports.js';
import { startEmbeddedPostgres } from './postgres.js';
import { acquireLock, releaseLock } from './stack-lock.js';
import { removeStackFile, stackPaths, writeStackFile, type StackInfo } from './stack-files.js';
import { startServices } from './stack-services.js';
import { StopList, startSideBySide } from './stop-list.js';
import { resolveTemporalCli } from './temporal-cli.js';
import { startTemporalDevServer } from './temporal-server.js';

const env = process.env;
const paths = stackPaths(env);
const logger = createLogger({ level: env.LOG_LEVEL ?? 'info', name: 'dev-stack' });

/** Every process and server, registered the moment it exists (not when ready): a failed start stops them all. */
const started = new StopList();
/** Aborted by a stop request during start-up, so readiness waits end at once. */
const startup = new AbortController();
let stopRequested = false;
let ready = false;

class StopRequested extends Error {}

async function step<T>(part: string, label: string, fn: () => Promise<T>): Promise<T> {
  if (stopRequested) throw new StopRequested();
  logger.info({ part, phase: 'starting' }, `starting ${label}`);
  const t0 = Date.now();
  const result = await fn();
  logger.info(
    { part, phase: 'ready', ms: Date.now() - t0 },
    `${label} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return result;
}

async function stopAll(): Promise<void> {
  await started.stopAll(
    (name, err) => logger.error({ part: name, err }, `stopping ${name} failed`),
    (name) => logger.info({ part: name, phase: 'stopping' }, `stopping ${name}`),
  );
}

/** EHR_SANDBOX_PERSONALITIES: comma-separated, 'none', or unset for every vendor personality. */
function devPersonalities(value: string | undefined): PersonalityId[] {
  if (value === undefined || value.trim() === '') return PERSONALITY_IDS.filter((p) => p !== 'standard');
  if (value.trim() === 'none') return [];
  const ids = value.split(',').map((v) => v.trim());
  const unknown = ids.filter((id) => !isPersonalityId(id) || id === 'standard');
  if (unknown.length > 0)
    throw new DevSetupError(
      'sandbox',
      `EHR_SANDBOX_PERSONALITIES: unknown ${unknown.join(', ')}; known: ` +
        `${PERSONALITY_IDS.filter((p) => p !== 'standard').join(', ')}`,
    );
  return ids as PersonalityId[];
}

async function startStack(): Promise<StackInfo> {
  const namespace = env.TEMPORAL_NAMESPACE || configSchema.shape.TEMPORAL_NAMESPACE.parse(undefined);
  const taskQueue = env.TEMPORAL_TASK_QUEUE || configSchema.shape.TEMPORAL_TASK_QUEUE.parse(undefined);
  const sandboxSize = Number(env.EHR_SANDBOX_SIZE ?? 5000);
  if (!Number.isInteger(sandboxSize) || sandboxSize <= 0)
    throw new DevSetupError('sandbox', `EHR_SANDBOX_SIZE must be a positive integer`);
  fs.mkdirSync(paths.logDir, { recursive: true, mode: 0o700 });

  const cliPath = await resolveTemporalCli({ onProgress: (line) => logger.info({ part: 'temporal-cli' }, line) });
  // The codec server's address must be known before the Web UI starts (--ui-codec-endpoint).
  const tls = await step('tls', 'dev CA, codec server certificate and dev token issuer', async () => {
    const material = await ensureDevCodecMaterial(paths.tlsDir);
    logger.info(
      { part: 'tls', caPath: material.caCertPath },
      `dev CA: ${material.caCertPath}${material.created.length ? ` (created ${material.created.join(', ')})` : ''}`,
    );
    return material;
  });
  const codecPort = await findFreePort({ prefer: 8888 });
  // The worker serves our hosted JWKS here; the sandbox fetches integrations' keys from it.
  const jwksPort = await findFreePort({ prefer: 8890, avoid: [codecPort] });
  // The webhook receiver: vendors (and the sandbox's sender) post to <webhookUrl>/webhooks/<integration>.
  const webhookPort = await findFreePort({ prefer: 8891, avoid: [codecPort, jwksPort] });
  // The mediation gateway (workers/gateway.ts): consumers' token endpoint and FHIR reads, over HTTPS.
  const gatewayPort = await findFreePort({ prefer: 8892, avoid: [codecPort, jwksPort, webhookPort] });
  const codecUrl = `https://127.0.0.1:${codecPort}`;
  // Side by side; the first failure aborts the other, and each is registered in `started` once spawned.
  const [db, temporal] = await startSideBySide([
    (failed) =>
      step('postgres', 'PostgreSQL', async () => {
        const signal = AbortSignal.any([failed, startup.signal]);
        const server = await startEmbeddedPostgres({
          dataDir: paths.postgresDir,
          logFile: path.join(paths.logDir, 'postgres.log'),
          stops: started,
          signal,
          onProgress: (line) => logger.info({ part: 'postgres' }, line),
        });
        const applied = await migrateUp(server.databaseUrl);
        logger.info({ part: 'postgres', applied }, `migrations applied: ${applied.length}`);
        // As the owner: where the integrations' stored secret references may point (the app role cannot change it).
        const secretRoots = {
          EHR_SECRET_ROOTS: env.EHR_SECRET_ROOTS,
          EHR_SECRETS_DIR: paths.secretsDir,
          EHR_KEK_DIR: paths.kekDir,
        };
        await writeSecretRoots(server.databaseUrl, storedSecretPolicyFromConfig(secretRoots, env), 'dev-stack');
        // Migrations run as the owner; everything else connects as the app role, which may only
        // insert into the audit tables (a fresh password per start; never logged).
        return { ...server, databaseUrl: await ensureAppLoginRole(server.databaseUrl) };
      }),
    (failed) =>
      step('temporal', 'Temporal dev server + Web UI', async () => {
        const taken = [codecPort, jwksPort, webhookPort, gatewayPort];
        const port = await findFreePort({ prefer: 7233, avoid: taken });
        const uiPort = await findFreePort({ prefer: 8233, avoid: [port, ...taken] });
        return startTemporalDevServer({
          cliPath,
          port,
          uiPort,
          dbFile: paths.temporalDb,
          namespace,
          logFile: path.join(paths.logDir, 'temporal.log'),
          uiCodecEndpoint: env.EHR_UI_CODEC_ENDPOINT || codecUrl,
          stops: started,
          signal: AbortSignal.any([failed, startup.signal]),
        });
      }),
  ] as const);

  await step('keys', 'key and secrets directories', async () => {
    await ensureLocalKekDir(paths.kekDir);
    fs.mkdirSync(paths.secretsDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(paths.secretsDir, 0o700);
  });

  const sandbox = await step('sandbox', `sandbox vendor (seed 42, ${sandboxSize} resources)`, () =>
    startSandbox({ seed: 42, size: sandboxSize, host: '127.0.0.1' }),
  );
  started.add('sandbox', () => sandbox.close());

  // One sandbox per vendor personality, so `integrations add --vendor epic` meets an Epic-shaped API.
  const personalities = devPersonalities(env.EHR_SANDBOX_PERSONALITIES);
  // A small practice each: vendors read patient by patient make a request per patient and type within their
  // rate limit (eClinicalWorks: 250 a minute), so a big roster would make the demo wait minutes for nothing.
  const personalitySize = Math.min(sandboxSize, 600);
  const sandboxes = await step(
    'sandboxes',
    `vendor personality sandboxes (${personalities.join(', ') || 'none'}; ${personalitySize} resources each)`,
    async () => {
      const handles = [];
      for (const personality of personalities) {
        const handle = await startSandbox({ seed: 42, size: personalitySize, host: '127.0.0.1', personality });
        started.add(`sandbox-${personality}`, () => handle.close());
        handles.push({ personality, url: handle.url, fhirBaseUrl: handle.fhirBaseUrl, adminToken: handle.adminToken });
      }
      return handles;
    },
  );

  const { codec, worker, webhooks, webhookUrl, gateway, gatewayUrl } = await startServices(
    { env, paths, logger, started, step, stopRequested: () => stopRequested },
    {
      databaseUrl: db.databaseUrl,
      temporal,
      namespace,
      taskQueue,
      tls,
      codecUrl,
      codecPort,
      jwksPort,
      webhookPort,
      gatewayPort,
      sandboxAdmins: [
        { fhirBaseUrl: sandbox.fhirBaseUrl, url: sandbox.url, adminToken: sandbox.adminToken },
        ...sandboxes.map((s) => ({ fhirBaseUrl: s.fhirBaseUrl, url: s.url, adminToken: s.adminToken })),
      ],
    },
  );

  return {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    temporalAddress: temporal.address,
    temporalUiUrl: temporal.uiUrl ?? '',
    namespace,
    taskQueue,
    databaseUrl: db.databaseUrl,
    sandboxUrl: sandbox.url,
    sandboxFhirBaseUrl: sandbox.fhirBaseUrl,
    sandboxTokenUrl: sandbox.tokenUrl,
    sandboxAdminToken: sandbox.adminToken,
    kekDir: paths.kekDir,
    secretsDir: paths.secretsDir,
    workerPid: worker.pid!,
    logDir: paths.logDir,
    codecUrl,
    codecPid: codec.pid!,
    devCaPath: tls.caCertPath,
    jwksUrl: `http://127.0.0.1:${jwksPort}`,
    webhookUrl,
    webhookPid: webhooks.pid!,
    gatewayUrl,
    gatewayPid: gateway.pid!,
    sandboxes,
  };
}

async function shutdown(signal: string): Promise<void> {
  if (stopRequested) return;
  stopRequested = true;
  logger.info({ signal }, 'stop requested');
  if (!ready) {
    startup.abort(new Error(`${signal} received`)); // the start-up sequence unwinds and stops what it started
    return;
  }
  await stopAll();
  removeStackFile(paths);
  releaseLock(paths);
  logger.info({ phase: 'stopped' }, 'dev stack stopped');
  process.exit(0);
}

async function main(): Promise<void> {
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => undefined);
  acquireLock(paths);
  logger.info({ phase: 'starting', dataDir: paths.dataDir }, 'dev stack starting');
  try {
    const info = await startStack();
    if (stopRequested) throw new StopRequested();
    writeStackFile(info, paths);
    ready = true;
    logger.info(
      {
        phase: 'ready',
        temporalAddress: info.temporalAddress,
        temporalUiUrl: info.temporalUiUrl,
        sandboxUrl: info.sandboxUrl,
        codecUrl: info.codecUrl,
      },
      'dev stack ready',
    );
  } catch (err) {
    const requested = err instanceof StopRequested || stopRequested;
    if (requested) logger.info('stop requested during start-up; stopping what was started');
    else
      logger.error(
        { phase: 'failed', err },
        `dev stack failed to start: ${err instanceof Error ? err.message : String(err)}`,
      );
    await stopAll();
    removeStackFile(paths);
    releaseLock(paths);
    process.exit(requested ? 0 : 1);
  }
}

process.on('uncaughtException', (err) => {
  logger.fatal({ err }, 'uncaught exception in the dev stack daemon; stopping');
  void stopAll().finally(() => {
    removeStackFile(paths);
    releaseLock(paths);
    process.exit(1);
  });
});

main().catch((err: unknown) => {
  logger.fatal({ err }, `dev stack daemon failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
