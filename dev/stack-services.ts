/**
 * The product's own processes in the dev stack: the codec server, the worker, the webhook receiver and the
 * mediation gateway (HTTPS with a certificate from the dev CA, like the codec server),
 * each `workers/<script>.ts` spawned with its log file, registered to be stopped with the rest, and
 * waited for until it serves. The daemon (stack-daemon.ts) starts the infrastructure they need and owns
 * the start-up sequence; this file is what one of our services needs to run beside it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../lib/log/logger.js';
import { DEV_TOKEN_AUDIENCE, DEV_TOKEN_ISSUER, waitForCodecServer, type DevCodecMaterial } from './dev-tls.js';
import { DevSetupError } from './errors.js';
import { hasExited, spawnLogged, stopChild, terminateOnExit } from './process.js';
import { PROCESS_ENV, nodeArgsFor } from '../workers/node-process.js';
import { repoRoot, type DevSandbox, type StackPaths } from './stack-files.js';
import type { StopList } from './stop-list.js';
import { waitForWorkerPolling } from './worker-ready.js';

/** What the daemon shares with the services it starts. */
export interface StackRun {
  env: NodeJS.ProcessEnv;
  paths: StackPaths;
  logger: Logger;
  /** Every process, registered the moment it exists: a failed start stops them all. */
  started: StopList;
  /** Logs a part's start and readiness (and refuses to start once a stop was requested). */
  step: <T>(part: string, label: string, fn: () => Promise<T>) => Promise<T>;
  stopRequested: () => boolean;
}

/** Where the services find the infrastructure the daemon started before them. */
export interface ServiceInputs {
  databaseUrl: string;
  temporal: { address: string; uiUrl?: string | undefined };
  namespace: string;
  taskQueue: string;
  tls: DevCodecMaterial;
  codecUrl: string;
  codecPort: number;
  jwksPort: number;
  webhookPort: number;
  gatewayPort: number;
  /** Every sandbox's admin access, for the worker's dev-only sandbox hooks. */
  sandboxAdmins: Array<Pick<DevSandbox, 'fhirBaseUrl' | 'url' | 'adminToken'>>;
}

export interface StartedServices {
  codec: ChildProcess;
  worker: ChildProcess;
  webhooks: ChildProcess;
  webhookUrl: string;
  gateway: ChildProcess;
  gatewayUrl: string;
}

/** Starts the codec server, the worker, the webhook receiver and the gateway, in that order, each until it serves. */
export async function startServices(run: StackRun, inputs: ServiceInputs): Promise<StartedServices> {
  const { env, step } = run;
  const { temporal, namespace, taskQueue, tls, codecUrl } = inputs;
  const startService = serviceStarter(run, inputs.databaseUrl);

  const codec = await step('codec', `codec server (${codecUrl})`, async () => {
    const { child, abortIf } = startService('codec server', 'codec-server', {
      CODEC_HOST: '127.0.0.1',
      CODEC_PORT: String(inputs.codecPort),
      CODEC_UI_ORIGIN: env.CODEC_UI_ORIGIN || new URL(temporal.uiUrl ?? 'http://127.0.0.1:8233').origin,
      CODEC_TLS_CERT: `file:${tls.serverCertPath}`,
      CODEC_TLS_KEY: `file:${tls.serverKeyPath}`,
      CODEC_AUTH_ISSUER_KEY: `file:${tls.issuerPublicKeyPath}`,
      CODEC_AUTH_ISSUER: DEV_TOKEN_ISSUER,
      CODEC_AUTH_AUDIENCE: DEV_TOKEN_AUDIENCE,
    });
    await waitForCodecServer(codecUrl, fs.readFileSync(tls.caCertPath, 'utf8'), { timeoutMs: 60_000, abortIf });
    return child;
  });

  const worker = await step('worker', 'worker', async () => {
    const graceMs = Number(env.WORKER_SHUTDOWN_GRACE_MS ?? 30_000) + 15_000;
    const { child, abortIf } = startService(
      'worker',
      'worker',
      {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_TASK_QUEUE: taskQueue,
        EHR_AUDIT_ANCHOR_PATH: run.paths.auditAnchor,
        JWKS_LISTEN: `127.0.0.1:${inputs.jwksPort}`,
        EHR_DEV_SANDBOX_ADMINS: JSON.stringify(inputs.sandboxAdmins),
      },
      graceMs,
    );
    await waitForWorkerPolling(temporal.address, namespace, taskQueue, { timeoutMs: 180_000, abortIf });
    return child;
  });
  watchWorker(run, worker);

  const webhookUrl = `http://127.0.0.1:${inputs.webhookPort}`;
  const webhooks = await step('webhooks', `webhook receiver (${webhookUrl})`, async () => {
    const { child, abortIf } = startService('webhook receiver', 'webhook-receiver', {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      WEBHOOK_HOST: '127.0.0.1',
      WEBHOOK_PORT: String(inputs.webhookPort),
    });
    await waitForHealthz(webhookUrl, { timeoutMs: 60_000, abortIf });
    return child;
  });

  const gatewayUrl = `https://127.0.0.1:${inputs.gatewayPort}`;
  const gateway = await step('gateway', `gateway (${gatewayUrl})`, async () => {
    const { child, abortIf } = startService('gateway', 'gateway', {
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(inputs.gatewayPort),
      GATEWAY_PUBLIC_URL: gatewayUrl,
      GATEWAY_TLS_CERT: `file:${tls.gatewayCertPath}`,
      GATEWAY_TLS_KEY: `file:${tls.gatewayKeyPath}`,
      GATEWAY_ACCESS_SIGNING_KEY: `file:${tls.gatewayAccessKeyPath}`,
    });
    await waitForCodecServer(gatewayUrl, fs.readFileSync(tls.caCertPath, 'utf8'), {
      timeoutMs: 60_000,
      abortIf,
      part: 'gateway',
    });
    return child;
  });

  return { codec, worker, webhooks, webhookUrl, gateway, gatewayUrl };
}

/**
 * One of our own processes (workers/<script>.ts) with its log file: stopped in reverse order with the
 * rest, and `abortIf` for its readiness wait (a stop request, or the process already gone).
 */
function serviceStarter(run: StackRun, databaseUrl: string) {
  const { env, paths, logger } = run;
  return (name: string, script: string, serviceEnv: NodeJS.ProcessEnv, stopGraceMs = 10_000) => {
    const logFile = path.join(paths.logDir, `${script}.log`);
    const spawned = spawnLogged(process.execPath, nodeArgsFor(path.join(repoRoot, 'workers', `${script}.ts`)), {
      cwd: repoRoot,
      logFile,
      // What every service shares: the database, the key directories, the log level.
      env: {
        ...env,
        ...PROCESS_ENV,
        DATABASE_URL: databaseUrl,
        EHR_KEK_DIR: paths.kekDir,
        EHR_SECRETS_DIR: paths.secretsDir,
        LOG_LEVEL: env.LOG_LEVEL ?? 'info',
        ...serviceEnv,
      },
    });
    const child = spawned.child;
    terminateOnExit(child);
    run.started.add(name, async () => {
      const status = await stopChild(child, stopGraceMs);
      logger.info(
        { part: script, code: status?.code, signal: status?.signal },
        `${name} exited (${status?.code ?? status?.signal ?? 'unknown'})`,
      );
    });
    const abortIf = (): string | undefined =>
      run.stopRequested()
        ? 'stop requested'
        : hasExited(child)
          ? `the ${name} exited (code ${child.exitCode ?? child.signalCode}); ` +
            `see ${logFile}:\n${spawned.outputTail().trim()}`
          : undefined;
    return { child, abortIf };
  };
}

/** Polls `<url>/healthz` (plain HTTP, loopback) until it answers 200. */
async function waitForHealthz(
  url: string,
  opts: { timeoutMs: number; abortIf: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'not tried yet';
  for (;;) {
    const aborted = opts.abortIf();
    if (aborted) throw new DevSetupError('webhook receiver', aborted);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
      last = `answered ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new DevSetupError('webhook receiver', `not ready at ${url} (last problem: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function watchWorker(run: StackRun, child: ChildProcess): void {
  child.once('exit', (code, signal) => {
    if (!run.stopRequested()) {
      run.logger.error(
        { part: 'worker', code, signal },
        'the worker exited unexpectedly; ' +
          'the rest of the stack stays up (restart with `ehrctl dev down && ehrctl dev up`)',
      );
    }
  });
}
