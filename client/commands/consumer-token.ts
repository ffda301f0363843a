/**
 * `ehrctl dev consumer-token --consumer C`: for trying the gateway by hand, signs a client assertion with the
 * consumer's `--dev-key` private key (EHR_SECRETS_DIR), exchanges it at the gateway's token endpoint and prints
 * the access token. The gateway is the dev stack's (its URL and dev CA come from stack.json) or GATEWAY_PUBLIC_URL.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Command } from 'commander';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { ConfigError, GatewayRefusalError, InvalidArgumentError } from '../../lib/errors/index.js';
import { ASSERTION_TYPE } from '../../lib/gateway/auth/token-endpoint.js';
import { devKeyPath, showConsumer } from '../../lib/gateway/consumers.js';
import type { SigningAlg } from '../../lib/keys/signing-keys.js';
import { loadSigningKey } from '../../lib/keys/signing-keys.js';
import { withContext } from '../context.js';
import { print } from '../output.js';

function postForm(
  url: string,
  form: URLSearchParams,
  ca: string | undefined,
): Promise<{ status: number; body: string }> {
  const body = form.toString();
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        timeout: 15_000,
        ...(ca && target.protocol === 'https:' ? { ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

export function registerConsumerTokenCommand(dev: Command): void {
  dev
    .command('consumer-token')
    .description("sign a client assertion with a --dev-key consumer's key, get a gateway access token and print it")
    .requiredOption('--consumer <id>', 'a consumer registered with `consumers add … --dev-key`')
    .option('--scope <scopes>', 'scopes to ask for (default: every scope the consumer holds)')
    .option('--ca <file>', "CA certificate to trust for the gateway's TLS (default: the dev stack's dev CA)")
    .action(async (opts: { consumer: string; scope?: string; ca?: string }) =>
      withContext(async (ctx) => {
        const consumer = await showConsumer(await ctx.db(), opts.consumer);
        const key = (consumer.jwks?.keys ?? []).find(
          (k) => k.kid && fs.existsSync(devKeyPath(ctx.config.EHR_SECRETS_DIR, consumer.id, k.kid)),
        );
        if (!key?.kid)
          throw new InvalidArgumentError(
            '--consumer',
            `no --dev-key private key of consumer ${consumer.id} under ${ctx.config.EHR_SECRETS_DIR}`,
          );
        const alg = (key.alg ?? 'ES384') as SigningAlg;
        const gatewayUrl = ctx.config.GATEWAY_PUBLIC_URL;
        if (!gatewayUrl)
          throw new ConfigError(
            'GATEWAY_PUBLIC_URL',
            'is not set and no dev stack runs (start it with `ehrctl dev up`)',
          );
        const tokenUrl = `${gatewayUrl}/auth/token`;
        const privateKey = await loadSigningKey(
          `file:${devKeyPath(ctx.config.EHR_SECRETS_DIR, consumer.id, key.kid)}`,
          alg,
        );
        const assertion = await signClientAssertion({
          clientId: consumer.id,
          audience: tokenUrl,
          kid: key.kid,
          alg,
          privateKey,
        });
        const caFile = opts.ca ?? ctx.stack('EHR_CODEC_CA');
        const res = await postForm(
          tokenUrl,
          new URLSearchParams({
            grant_type: 'client_credentials',
            client_assertion_type: ASSERTION_TYPE,
            client_assertion: assertion,
            scope: opts.scope ?? consumer.scopes.join(' '),
          }),
          caFile ? fs.readFileSync(caFile, 'utf8') : undefined,
        );
        let answer: { access_token?: unknown; error?: unknown };
        try {
          answer = JSON.parse(res.body) as typeof answer;
        } catch {
          answer = {};
        }
        if (res.status !== 200 || typeof answer.access_token !== 'string') {
          const error = typeof answer.error === 'string' ? answer.error.slice(0, 60) : `http-${res.status}`;
          throw new GatewayRefusalError(res.status === 429 ? 429 : 401, error, 'token request refused', consumer.id);
        }
        print(answer.access_token);
      }),
    );
}
