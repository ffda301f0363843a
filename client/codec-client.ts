/**
 * Decoding payloads through the codec server (never with keys loaded locally): the same
 * authorisation and the same audit as the Web UI. POST <codec>/decode with a bearer token, trusting
 * the given CA (the dev stack's dev CA) in addition to the system's.
 */
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Payload } from '@temporalio/common';
import { InfrastructureUnavailableError, PolicyViolationError } from '../lib/errors/index.js';
import { fromWire, toWire } from '../lib/crypto/codec-wire.js';

export interface RemoteCodecOptions {
  url: string;
  token: string;
  namespace: string;
  /** Extra CA certificate (PEM) to trust, e.g. the dev CA. */
  caPem?: string;
}

export function remoteDecoder(opts: RemoteCodecOptions): (payloads: Payload[]) => Promise<Payload[]> {
  const endpoint = new URL('/decode', opts.url);
  if (endpoint.protocol !== 'https:') throw new PolicyViolationError('codec server', 'must be reached over https');
  const ca = opts.caPem ? [...rootCertificates, opts.caPem] : undefined;
  return (payloads) =>
    new Promise<Payload[]>((resolve, reject) => {
      const body = JSON.stringify(toWire(payloads));
      const req = https.request(
        endpoint,
        {
          method: 'POST',
          ca,
          timeout: 30_000,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization: `Bearer ${opts.token}`,
            'x-namespace': opts.namespace,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            if (res.statusCode !== 200) {
              const reason = (parsed as { reason?: unknown } | undefined)?.reason;
              reject(
                new PolicyViolationError(
                  'codec server refused to decode',
                  `${res.statusCode}: ${typeof reason === 'string' ? reason : 'no reason given'}`,
                ),
              );
              return;
            }
            try {
              resolve(fromWire(parsed));
            } catch (err) {
              reject(
                new PolicyViolationError('codec server', `answered malformed payloads (${(err as Error).message})`),
              );
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
      req.on('error', (err) =>
        reject(
          new InfrastructureUnavailableError(
            'codec',
            endpoint.origin,
            `${err.message}. Start it with \`ehrctl dev up\` or pass --codec-url.`,
          ),
        ),
      );
      req.end(body);
    });
}

/**
 * A reconciliation conflict's decoded diff: GET <codec>/conflicts/<id> with the caller's bearer token. The codec
 * server checks the decode role and audits the decode before it answers; nothing is decrypted here.
 */
export function remoteConflictDiff(opts: Omit<RemoteCodecOptions, 'namespace'>, conflictId: string): Promise<unknown> {
  const endpoint = new URL(`/conflicts/${encodeURIComponent(conflictId)}`, opts.url);
  if (endpoint.protocol !== 'https:') throw new PolicyViolationError('codec server', 'must be reached over https');
  const ca = opts.caPem ? [...rootCertificates, opts.caPem] : undefined;
  return new Promise<unknown>((resolve, reject) => {
    const req = https.request(
      endpoint,
      { method: 'GET', ca, timeout: 30_000, headers: { authorization: `Bearer ${opts.token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          if (res.statusCode === 200 && parsed !== undefined) return resolve(parsed);
          const reason = (parsed as { reason?: unknown } | undefined)?.reason;
          reject(
            new PolicyViolationError(
              'codec server refused the conflict diff',
              `${res.statusCode}: ${typeof reason === 'string' ? reason : 'no reason given'}`,
            ),
          );
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', (err) =>
      reject(
        new InfrastructureUnavailableError(
          'codec',
          endpoint.origin,
          `${err.message}. Start it with \`ehrctl dev up\` or pass --codec-url.`,
        ),
      ),
    );
    req.end();
  });
}
