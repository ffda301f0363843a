import os from 'node:os';
import type { Command } from 'commander';
import { issueDevToken } from '../../dev/dev-tls.js';
import { describeStack, devDown, devStatus, devUp, stackPaths } from '../../dev/stack.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { print, printJson } from '../output.js';
import { registerConsumerTokenCommand } from './consumer-token.js';

/** Settings that, when exported, take precedence over the dev stack for ehrctl commands. */
const OVERRIDING_ENV = ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'EHR_KEK_DIR', 'EHR_SECRETS_DIR'] as const;

export function registerDevCommands(program: Command): void {
  const dev = program
    .command('dev')
    .description(
      'the embedded dev stack: PostgreSQL, Temporal dev server + Web UI, sandbox vendor, worker (state under .data/)',
    );

  dev
    .command('up')
    .description('start the dev stack in the background (returns when it is ready; no-op if it already runs)')
    .option('--sandbox-size <patients>', 'synthetic patients in the sandbox (default EHR_SANDBOX_SIZE or 5000)')
    .option('--timeout <seconds>', 'give up after this long', '600')
    .action(async (opts: { sandboxSize?: string; timeout: string }) => {
      const sandboxSize = opts.sandboxSize === undefined ? undefined : positiveInt('--sandbox-size', opts.sandboxSize);
      const timeoutMs = positiveInt('--timeout', opts.timeout) * 1000;
      const started = Date.now();
      const result = await devUp({ out: print, sandboxSize, timeoutMs });
      if (result.status === 'already-running') {
        print(`dev stack already running (daemon pid ${result.info.pid})`);
      } else {
        print(`dev stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      for (const line of describeStack(result.info, devStatus().workerRunning ?? true)) print(line);
      print('ehrctl commands use this stack automatically; stop it with `ehrctl dev down`.');
      const overriding = OVERRIDING_ENV.filter((name) => process.env[name]);
      if (overriding.length > 0)
        print(`note: ${overriding.join(', ')} set in your environment take precedence over the dev stack.`);
    });

  dev
    .command('down')
    .description('stop everything `dev up` started (worker drains first); data under .data/ is kept')
    .option('--timeout <seconds>', 'wait at most this long', '60')
    .action(async (opts: { timeout: string }) => {
      const outcome = await devDown({ out: print, timeoutMs: positiveInt('--timeout', opts.timeout) * 1000 });
      print(outcome === 'stopped' ? 'dev stack stopped' : 'dev stack is not running');
    });

  dev
    .command('status')
    .description('whether the dev stack runs, and its addresses')
    .option('--json', 'machine-readable output (includes the database URL with its password)')
    .action((opts: { json?: boolean }) => {
      const status = devStatus();
      if (opts.json) {
        printJson({
          running: status.running,
          ...(status.starting ? { starting: true, pid: status.daemonPid } : {}),
          ...(status.info ? { ...status.info, workerRunning: status.workerRunning } : {}),
        });
        return;
      }
      if (status.info) {
        print(`dev stack running`);
        for (const line of describeStack(status.info, status.workerRunning)) print(line);
      } else if (status.starting) {
        print(`dev stack starting (daemon pid ${status.daemonPid})`);
      } else {
        print('dev stack not running (start it with `ehrctl dev up`)');
      }
    });

  registerDevTokenCommand(dev);
  registerConsumerTokenCommand(dev);
}

export function registerDevTokenCommand(dev: Command): void {
  dev
    .command('token')
    .description(
      "print a short-lived token from the dev stack's token issuer, " +
        "for the codec server (audit history --decode, the Web UI's /login)",
    )
    .option('--role <role>', 'a role for the roles claim (repeatable)', (v: string, acc: string[] | undefined) => [
      ...(acc ?? []),
      v,
    ])
    .option('--sub <name>', 'the subject the codec server audits decodes under (default: user@host)')
    .option('--ttl <seconds>', 'lifetime, at most 28800', '3600')
    .action(async (opts: { role?: string[]; sub?: string; ttl: string }) => {
      const ttlSeconds = positiveInt('--ttl', opts.ttl);
      if (ttlSeconds > 28_800) throw new InvalidArgumentError('--ttl', 'must be at most 28800 seconds (8 hours)');
      const sub = opts.sub ?? `${os.userInfo().username}@${os.hostname()}`;
      const token = await issueDevToken(stackPaths().tlsDir, { sub, roles: opts.role ?? ['phi-decoder'], ttlSeconds });
      print(token);
    });
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(name, `expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}
