/**
 * CLI: `tsx sandbox/main.ts --port 0 --seed 42 --size 5000` starts a sandbox and prints one JSON line
 * {"url","fhirBaseUrl","tokenUrl","adminToken"} on stdout. Stops on SIGTERM/SIGINT.
 */
import { startSandbox, type SandboxOptions } from './index.js';

const FLAGS: Record<string, keyof SandboxOptions> = {
  '--port': 'port',
  '--seed': 'seed',
  '--size': 'size',
  '--host': 'host',
  '--token-ttl': 'tokenTtlSeconds',
  '--admin-token': 'adminToken',
  '--max-page-size': 'maxPageSize',
};

function parseArgs(argv: readonly string[]): SandboxOptions {
  const opts: Record<string, string | number> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes('=') ? (arg.split('=', 2) as [string, string]) : [arg, undefined];
    const key = FLAGS[flag];
    if (!key) throw new Error(`unknown argument ${flag} (known: ${Object.keys(FLAGS).join(', ')})`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    opts[key] = key === 'host' || key === 'adminToken' ? value : Number(value);
  }
  return opts as SandboxOptions;
}

async function main(): Promise<void> {
  const sandbox = await startSandbox(parseArgs(process.argv.slice(2)));
  const { url, fhirBaseUrl, tokenUrl, adminToken } = sandbox;
  process.stdout.write(`${JSON.stringify({ url, fhirBaseUrl, tokenUrl, adminToken })}\n`);
  const stop = (): void => {
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`sandbox failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
