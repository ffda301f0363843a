/**
 * Bulk Data status and files, served on the sandbox and on its second listener (another origin):
 * `GET /bulk/status/:job` (202 + X-Progress + Retry-After while preparing, then the manifest),
 * `DELETE /bulk/status/:job` (cancel: 202, later polls 404), `GET /bulk/files/:job/:file` (NDJSON
 * streamed line by line; a bearer token required when the manifest says so). Files expire after the
 * personality's TTL. Misbehaviour comes from the job's captured BulkBehaviour.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { logPush } from './bulk-behaviour.js';
import { completeJob, ndjsonStream, type BulkJob } from './bulk-jobs.js';
import type { SandboxContext } from './context.js';
import { httpDate, operationOutcome } from './faults.js';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const DEFAULT_PER_FILE = 100_000;
const DEFAULT_TTL_S = 3600;

function outcome(reply: FastifyReply, status: number, code: string, text: string): FastifyReply {
  return reply
    .code(status)
    .type(FHIR_JSON)
    .send(JSON.stringify(operationOutcome(code, text)));
}

function retryAfter(job: BulkJob, nowMs: number): string {
  const s = job.behaviour.retryAfterSeconds;
  return job.behaviour.retryAfterAsDate ? httpDate(nowMs + s * 1000) : String(s);
}

function expired(job: BulkJob, nowMs: number): boolean {
  return job.expiresMs !== undefined && nowMs >= job.expiresMs;
}

function fileUrl(ctx: SandboxContext, job: BulkJob, name: string): string {
  const origin = job.behaviour.filesOnOtherHost ? ctx.bulk.otherOrigin : ctx.urls.url;
  return `${origin}/bulk/files/${job.id}/${name}`;
}

export function manifestOf(ctx: SandboxContext, job: BulkJob): Record<string, unknown> {
  const item = (kind: 'output' | 'error' | 'deleted'): Array<Record<string, unknown>> =>
    job.files
      .filter((f) => f.kind === kind)
      .map((f) => ({ type: f.type, url: fileUrl(ctx, job, f.name), ...(kind === 'output' ? { count: f.count } : {}) }));
  const deleted = item('deleted');
  return {
    transactionTime: new Date(job.transactionTimeMs).toISOString(),
    request: job.requestUrl,
    requiresAccessToken: job.behaviour.requiresAccessToken,
    output: item('output'),
    error: item('error'),
    ...(deleted.length > 0 || ctx.reads.bulk?.version === '2.0.0' ? { deleted } : {}),
  };
}

function jobFor(ctx: SandboxContext, req: FastifyRequest<{ Params: { job: string } }>): BulkJob | undefined {
  const job = ctx.bulk.jobs.get(req.params.job);
  return job && job.state !== 'cancelled' ? job : undefined;
}

export function registerBulkStatusRoutes(app: FastifyInstance, ctx: SandboxContext, host: string): void {
  const tokenOk = (req: FastifyRequest, job: BulkJob): boolean =>
    ctx.auth.authenticate(req.headers.authorization)?.clientId === job.clientId;

  app.get<{ Params: { job: string } }>('/bulk/status/:job', async (req, reply) => {
    const now = Date.now();
    const job = jobFor(ctx, req);
    const previous = job?.lastPollMs;
    const record = (status: number): void =>
      logPush(ctx.bulk.log.polls, {
        jobId: req.params.job,
        atMs: now,
        status,
        sinceLastMs: previous === undefined ? null : now - previous,
        host,
      });
    if (!job || !ctx.auth.authenticate(req.headers.authorization)) {
      record(job ? 401 : 404);
      return job
        ? outcome(reply, 401, 'login', 'missing or expired access token')
        : outcome(reply, 404, 'not-found', 'no such export');
    }
    if (!tokenOk(req, job) || expired(job, now)) {
      record(404);
      return outcome(reply, 404, 'not-found', 'no such export');
    }
    const b = job.behaviour;
    if (b.enforcePollSpacing && previous !== undefined && now - previous < b.retryAfterSeconds * 1000) {
      record(429);
      reply.header('retry-after', retryAfter(job, now));
      return outcome(reply, 429, 'throttled', 'polled before Retry-After');
    }
    job.lastPollMs = now;
    if (ctx.bulk.behaviour.pollErrors > 0) {
      ctx.bulk.behaviour.pollErrors--;
      record(b.errorStatus);
      reply.header('retry-after', retryAfter(job, now));
      return outcome(reply, b.errorStatus, 'transient', 'temporary failure, retry later');
    }
    if (job.state === 'preparing' && job.pollsLeft > 0) {
      const total = b.preparePolls + 1;
      const done = total - job.pollsLeft;
      job.pollsLeft--;
      record(202);
      return reply
        .code(202)
        .header('x-progress', `preparing (${Math.round((done * 100) / total)}%)`)
        .header('retry-after', retryAfter(job, now))
        .send();
    }
    if (job.state === 'preparing') {
      const bulk = ctx.reads.bulk;
      completeJob(
        job,
        now,
        bulk?.fileTtlSeconds ?? DEFAULT_TTL_S,
        b.resourcesPerFile ?? bulk?.resourcesPerFile ?? DEFAULT_PER_FILE,
      );
    }
    record(200);
    reply.header('expires', new Date(job.expiresMs as number).toUTCString());
    if (b.manifestNotJson)
      return reply.code(200).type('application/json').send('<html><body>Export complete</body></html>');
    return reply
      .code(200)
      .type('application/json')
      .send(JSON.stringify(manifestOf(ctx, job)));
  });

  app.delete<{ Params: { job: string } }>('/bulk/status/:job', async (req, reply) => {
    const job = jobFor(ctx, req);
    const status = !job ? 404 : !tokenOk(req, job) ? 401 : 202;
    logPush(ctx.bulk.log.deletes, { jobId: req.params.job, atMs: Date.now(), status });
    if (status !== 202 || !job) return outcome(reply, status, status === 404 ? 'not-found' : 'login', 'cannot cancel');
    job.state = 'cancelled';
    job.snapshots.clear();
    return reply
      .code(202)
      .type(FHIR_JSON)
      .send(
        JSON.stringify({
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'information', code: 'informational', diagnostics: 'export cancelled' }],
        }),
      );
  });

  app.get<{ Params: { job: string; file: string } }>('/bulk/files/:job/:file', async (req, reply) => {
    const now = Date.now();
    const bearer = /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
    const job = jobFor(ctx, req);
    const file = job?.state === 'complete' ? job.files.find((f) => f.name === req.params.file) : undefined;
    const record = (status: number): void =>
      logPush(ctx.bulk.log.downloads, {
        jobId: req.params.job,
        file: req.params.file,
        atMs: now,
        status,
        bearer,
        host,
      });
    if (!job || !file) {
      record(404);
      return outcome(reply, 404, 'not-found', 'no such file');
    }
    if (expired(job, now)) {
      const status = ctx.reads.bulk?.expiredStatus ?? 404;
      record(status);
      return outcome(reply, status, 'not-found', 'the export file has expired');
    }
    if (job.behaviour.requiresAccessToken && !tokenOk(req, job)) {
      record(401);
      reply.header('www-authenticate', 'Bearer error="invalid_token"');
      return outcome(reply, 401, 'login', 'this file requires the access token');
    }
    if (ctx.bulk.behaviour.downloadErrors > 0) {
      ctx.bulk.behaviour.downloadErrors--;
      record(job.behaviour.errorStatus);
      return outcome(reply, job.behaviour.errorStatus, 'transient', 'temporary failure, retry later');
    }
    file.downloads++;
    record(200);
    return reply
      .code(200)
      .type('application/fhir+ndjson')
      .send(ndjsonStream(ctx.store, job, file));
  });
}
