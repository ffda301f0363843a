/**
 * Development-only TLS and token material for the codec server, under `.data/tls/` (0700; private
 * keys 0600): a dev CA (its private key is not kept: certificates are re-issued with a new CA when
 * missing or near expiry), the codec server's and the gateway's certificates for 127.0.0.1/localhost, a dev
 * token issuer (Ed25519) whose public key the dev codec server trusts (`ehrctl dev token` signs short-lived
 * tokens with it), and the dev gateway's Ed25519 key that signs its access tokens (GATEWAY_ACCESS_SIGNING_KEY).
 * Never used in production: there the operator's PKI, IdP and secret store apply. The material is made by
 * dev-codec-material.ts (the stack daemon's), so ehrctl, which imports this file, does not load the X.509 library.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { DevSetupError } from './errors.js';
import { sleep } from './process.js';

export const DEV_TOKEN_ISSUER = 'ehr-connectors-dev-issuer';
export const DEV_TOKEN_AUDIENCE = 'ehr-connectors-codec';

export interface DevCodecMaterial {
  tlsDir: string;
  caCertPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  issuerPublicKeyPath: string;
  issuerPrivateKeyPath: string;
  /** The gateway's certificate and key (workers/gateway.ts), from the same dev CA. */
  gatewayCertPath: string;
  gatewayKeyPath: string;
  /** The gateway's access-token signing key (Ed25519, PKCS#8 PEM, 0600). */
  gatewayAccessKeyPath: string;
}

export function devCodecPaths(tlsDir: string): DevCodecMaterial {
  return {
    tlsDir,
    caCertPath: path.join(tlsDir, 'dev-ca.pem'),
    serverCertPath: path.join(tlsDir, 'codec-server.pem'),
    serverKeyPath: path.join(tlsDir, 'codec-server.key'),
    issuerPublicKeyPath: path.join(tlsDir, 'dev-token-issuer.pub.pem'),
    issuerPrivateKeyPath: path.join(tlsDir, 'dev-token-issuer.key'),
    gatewayCertPath: path.join(tlsDir, 'gateway.pem'),
    gatewayKeyPath: path.join(tlsDir, 'gateway.key'),
    gatewayAccessKeyPath: path.join(tlsDir, 'gateway-access-signing.key'),
  };
}

export interface DevTokenOptions {
  sub: string;
  roles: string[];
  ttlSeconds?: number;
  audience?: string;
}

/** A short-lived EdDSA JWT from the dev issuer (for `ehrctl dev token` and tests). */
export async function issueDevToken(tlsDir: string, opts: DevTokenOptions): Promise<string> {
  const { issuerPrivateKeyPath } = devCodecPaths(tlsDir);
  let pem: string;
  try {
    pem = fs.readFileSync(issuerPrivateKeyPath, 'utf8');
  } catch {
    throw new DevSetupError(
      'dev token',
      `no dev token issuer key at ${issuerPrivateKeyPath}; start the dev stack with \`ehrctl dev up\``,
    );
  }
  const ttl = opts.ttlSeconds ?? 3600;
  return new SignJWT({ roles: opts.roles })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setIssuer(DEV_TOKEN_ISSUER)
    .setAudience(opts.audience ?? DEV_TOKEN_AUDIENCE)
    .setSubject(opts.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
    .sign(createPrivateKey(pem));
}

/** Polls GET <url>/healthz over TLS trusting only `caPem`, until it answers 200 (the codec server, the gateway). */
export async function waitForCodecServer(
  url: string,
  caPem: string,
  opts: { timeoutMs?: number; abortIf?: () => string | undefined; part?: string } = {},
): Promise<void> {
  const part = opts.part ?? 'codec server';
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last = 'not tried yet';
  for (;;) {
    const aborted = opts.abortIf?.();
    if (aborted) throw new DevSetupError(part, aborted);
    last = await new Promise<string>((resolve) => {
      const req = https.get(`${url}/healthz`, { ca: caPem, timeout: 2_000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? '' : `answered ${res.statusCode}`);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => resolve(err.message));
    });
    if (last === '') return;
    if (Date.now() > deadline) throw new DevSetupError(part, `not ready at ${url} (last problem: ${last})`);
    await sleep(200);
  }
}
