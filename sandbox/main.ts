/**
 * CLI: `tsx sandbox/main.ts --port 0 --seed 42 --size 5000 [--personality epic]` starts a sandbox and prints
 * one JSON line {"url","fhirBaseUrl","tokenUrl","adminToken"} on stdout. Stops on SIGTERM/SIGINT. TLS:
 * `--tls-cert <pem file> --tls-key <pem file> [--tls-client-ca <pem file> --require-client-cert]`.
 */
import { readFileSync } from 'node:fs';
import { startSandbox, type SandboxOptions } from './index.js';

const TLS_FILES: Record<string, 'certPem' | 'keyPem' | 'caPem'> = {
  '--tls-cert': 'certPem',
  '--tls-key': 'keyPem',
  '--tls-client-ca': 'caPem',
};

const FLAGS: Record<string, keyof SandboxOptions> = {
  '--port': 'port',
  '--seed': 'seed',
  '--size': 'size',
  '--host': 'host',
  '--token-ttl': 'tokenTtlSeconds',
  '--admin-token': 'adminToken',
  '--max-page-size': 'maxPageSize',
  '--personality': 'personality',
};

function parseArgs(argv: readonly string[]): SandboxOptions {
  const opts: Record<string, string | number> = {};
  const tls: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes('=') ? (arg.split('=', 2) as [string, string]) : [arg, undefined];
    if (flag === '--require-client-cert') {
      tls.requireClientCert = true;
      continue;
    }
    const tlsKey = TLS_FILES[flag];
    if (tlsKey) {
      const file = inline ?? argv[++i];
      if (file === undefined) throw new Error(`${flag} needs a file`);
      tls[tlsKey] = readFileSync(file, 'utf8');
      continue;
    }
    const key = FLAGS[flag];
    if (!key)
      throw new Error(
        `unknown argument ${flag} (known: ` +
          `${[...Object.keys(FLAGS), ...Object.keys(TLS_FILES), '--require-client-cert'].join(', ')})`,
      );
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    opts[key] = key === 'host' || key === 'adminToken' || key === 'personality' ? value : Number(value);
  }
  if (Object.keys(tls).length > 0)
    return { ...(opts as SandboxOptions), tls: tls as unknown as NonNullable<SandboxOptions['tls']> };
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
