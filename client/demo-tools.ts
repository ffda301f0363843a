/**
 * What the demo (demo.ts) does things with, as an operator would: ehrctl (echoed, and the workflow ids it
 * starts collected for the closing list), the sandboxes' admin API standing in for the vendor's portal,
 * and the dev stack's status. Its own file so demo.ts reads as the story it tells, step by step.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const repoRoot = path.resolve(__dirname, '..');
/** Every workflow the demo started (ehrctl's "started <id>" lines, and what the demo adds), for the Web UI list. */
export const workflowIds: string[] = [];

export function step(title: string): void {
  console.log(`\n=== ${title}`);
}

/** Runs ehrctl, echoing its output; returns stdout. Throws with the exit code on failure. */
export function ehrctl(...args: string[]): string {
  return ehrctlWith({ echo: true }, ...args);
}

export function ehrctlWith(opts: { echo: boolean }, ...args: string[]): string {
  if (opts.echo) console.log(`$ ehrctl ${args.join(' ')}`);
  const res = spawnSync(process.execPath, [path.join(repoRoot, 'bin/ehrctl.js'), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  if (res.stdout && opts.echo) process.stdout.write(res.stdout);
  if (res.status !== 0) throw new Error(`ehrctl ${args[0]} ${args[1] ?? ''} failed with exit code ${res.status}`);
  for (const m of res.stdout.matchAll(/^started (\S+)/gm)) workflowIds.push(m[1]!);
  return res.stdout;
}

export async function sandboxAdmin(status: StackStatus, route: string, body: unknown): Promise<unknown> {
  return adminRequest(`${status.sandboxUrl}${route}`, status.sandboxAdminToken, 'POST', body);
}

/**
 * One admin request on a connection of its own. The demo's calls are minutes apart; fetch's pooled keep-alive
 * socket was found closed by the sandbox by then ("other side closed"), and a POST is not retried.
 */
export function adminRequest(
  url: string,
  adminToken: string,
  method: 'GET' | 'POST',
  body?: unknown,
): Promise<unknown> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent: false,
        headers: {
          'x-sandbox-admin': adminToken,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new Error(`sandbox admin ${new URL(url).pathname} answered ${status}`));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err as Error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export interface StackStatus {
  temporalUiUrl: string;
  webhookUrl: string;
  sandboxUrl: string;
  sandboxAdminToken: string;
  secretsDir: string;
  sandboxes?: Array<{ personality: string; url: string; adminToken: string }>;
}

/**
 * The Group id a vendor's customer would hand over for Bulk Data or a patient roster; the demo asks the
 * personality sandbox for its practice Group, as an operator would read it off the vendor's portal.
 */
export async function practiceGroupOf(status: StackStatus, personality: string): Promise<string> {
  const sandbox = status.sandboxes?.find((s) => s.personality === personality);
  if (!sandbox) throw new Error(`the dev stack runs no ${personality} sandbox`);
  const answer = await adminRequest(`${sandbox.url}/admin/read-paths`, sandbox.adminToken, 'GET');
  return (answer as { reads: { groupId: string } }).reads.groupId;
}

/**
 * A client secret "issued by the vendor", kept the way an operator would: a 0600 file referenced by
 * the integration (`file:`), never printed, never in the database.
 */
export function issuedSecretRef(status: StackStatus, name: string): string {
  const file = path.join(status.secretsDir, `${name}.client-secret`);
  fs.writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
  return `file:${file}`;
}

export async function waitFor(what: string, timeoutMs: number, done: () => boolean): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !done();) {
    if (Date.now() > deadline) throw new Error(`${what} did not finish within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function startedIds(output: string): string[] {
  return [...output.matchAll(/^started (\S+)/gm)].map((m) => m[1]!);
}

/** Whether a dev stack runs (or is starting) right now, as `ehrctl dev status --json` sees it. */
export function stackRunning(): boolean {
  try {
    const s = JSON.parse(ehrctlWith({ echo: false }, 'dev', 'status', '--json')) as {
      running: boolean;
      starting?: boolean;
    };
    return s.running || s.starting === true;
  } catch {
    return false;
  }
}

/** The error's message and its causes' (a failed fetch says why only in its cause). */
export function describeFailure(err: unknown): string {
  const parts: string[] = [];
  for (
    let e = err as { message?: unknown; cause?: unknown } | undefined;
    e && parts.length < 4;
    e = e.cause as typeof e
  )
    if (typeof e.message === 'string') parts.push(e.message);
  return parts.join(': ');
}
