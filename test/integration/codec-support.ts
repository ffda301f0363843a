/** A real codec server for tests: a throwaway CA and server certificate, an Ed25519 token issuer, real audit rows. */
import https from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { recordAuditEvent } from '../../lib/audit/chain.js';
import type { Config } from '../../lib/config/schema.js';
import { createCertificateAuthority, issueCertificate } from '../../lib/crypto/tls-certs.js';
import type { Pool } from '../../lib/store/pool.js';
import type { CodecServerHandle } from '../../workers/codec-server.js';
import { startCodecServer } from '../../workers/codec-server.js';
import type { ConflictDiffSource } from '../../workers/codec/conflict-routes.js';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';

export const ISSUER = 'https://issuer.test.invalid';
export const AUDIENCE = 'ehr-connectors-codec';

export interface TestCodecServer extends CodecServerHandle {
  caPem: string;
  issuerKey: KeyObject;
  token(claims?: {
    sub?: string;
    roles?: string[];
    aud?: string;
    expSeconds?: number;
    key?: KeyObject;
    iss?: string;
  }): Promise<string>;
}

export async function startTestCodecServer(
  config: Config,
  pool: Pool,
  uiOrigin: string,
  opts: { anonymousRefusalWindowMs?: number; conflicts?: ConflictDiffSource } = {},
): Promise<TestCodecServer> {
  const ca = await createCertificateAuthority('codec test CA');
  const tls = await issueCertificate(ca, {
    commonName: '127.0.0.1',
    altNames: ['127.0.0.1', 'localhost'],
    usage: 'server',
  });
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const server = await startCodecServer(
    {
      ...config,
      CODEC_HOST: '127.0.0.1',
      CODEC_PORT: 0,
      CODEC_UI_ORIGIN: uiOrigin,
      CODEC_AUTH_ISSUER_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      CODEC_AUTH_ISSUER: ISSUER,
      CODEC_AUTH_AUDIENCE: AUDIENCE,
      CODEC_DECODE_ROLE: 'phi-decoder',
      CODEC_ENCODE_ROLE: 'payload-encoder',
    },
    {
      codec: await openPayloadCodec(config, { pool, actor: 'test:codec-server' }),
      audit: (e) => recordAuditEvent(pool, e),
      tls,
      anonymousRefusalWindowMs: opts.anonymousRefusalWindowMs,
      conflicts: opts.conflicts,
    },
  );
  return {
    ...server,
    caPem: ca.certPem,
    issuerKey: privateKey,
    token: (c = {}) =>
      new SignJWT({ roles: c.roles ?? ['phi-decoder'] })
        .setProtectedHeader({ alg: 'EdDSA' })
        .setIssuer(c.iss ?? ISSUER)
        .setAudience(c.aud ?? AUDIENCE)
        .setSubject(c.sub ?? 'alice@example.test')
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + (c.expSeconds ?? 300))
        .sign(c.key ?? privateKey),
  };
}

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** One HTTPS request that trusts only `caPem`. */
export function httpsCall(
  url: string,
  caPem: string,
  opts: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<HttpsResult> {
  const body =
    opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: opts.method ?? 'POST',
        ca: caPem,
        headers: {
          ...(body !== undefined
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }
            : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString('utf8')));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Declares a body of `declaredBytes`, sends only `sentBytes` of it and waits for an answer. A server
 * that reads the whole body before deciding never answers ('no-answer' after `timeoutMs`); one that
 * refuses first answers at once. The connection is destroyed either way.
 */
export function postWithoutFinishing(
  url: string,
  caPem: string,
  opts: { headers?: Record<string, string>; declaredBytes: number; sentBytes: number; timeoutMs: number },
): Promise<HttpsResult | 'no-answer'> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (v: HttpsResult | 'no-answer') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(v);
    };
    const req = https.request(
      url,
      {
        method: 'POST',
        ca: caPem,
        headers: { 'content-type': 'application/json', 'content-length': String(opts.declaredBytes), ...opts.headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString('utf8')));
        res.on('end', () =>
          settle({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text || 'null') as unknown }),
        );
      },
    );
    const timer = setTimeout(() => settle('no-answer'), opts.timeoutMs);
    // The server may close while we still send: that is the point, not an error.
    req.on('error', (err) => (settled ? undefined : reject(err)));
    req.write(Buffer.alloc(opts.sentBytes, 0x20));
  });
}
