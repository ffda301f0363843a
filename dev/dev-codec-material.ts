/**
 * Makes the dev stack's TLS and token material (dev-tls.ts describes it) when `ehrctl dev up`'s daemon starts.
 * Apart from dev-tls.ts so that every ehrctl start does not load the X.509 library (lib/crypto/tls-certs.ts):
 * only the daemon makes certificates.
 */
import fs from 'node:fs';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { createCertificateAuthority, issueCertificate } from '../lib/crypto/tls-certs.js';
import { devCodecPaths, type DevCodecMaterial } from './dev-tls.js';

function writeSecret(file: string, text: string): void {
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

function certStillGood(certPath: string, keyPath: string): boolean {
  try {
    const cert = new X509Certificate(fs.readFileSync(certPath));
    return fs.existsSync(keyPath) && new Date(cert.validTo).getTime() - Date.now() > 7 * 86_400_000;
  } catch {
    return false;
  }
}

/** Creates (first `dev up`) or reuses the dev CA, codec server certificate and token issuer key pair. */
export async function ensureDevCodecMaterial(tlsDir: string): Promise<DevCodecMaterial & { created: string[] }> {
  const p = devCodecPaths(tlsDir);
  const created: string[] = [];
  fs.mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(tlsDir, 0o700);
  if (
    !certStillGood(p.serverCertPath, p.serverKeyPath) ||
    !certStillGood(p.gatewayCertPath, p.gatewayKeyPath) ||
    !fs.existsSync(p.caCertPath)
  ) {
    const ca = await createCertificateAuthority('ehr-connectors dev CA (codec server)', 365);
    const loopback = { commonName: '127.0.0.1', altNames: ['127.0.0.1', 'localhost', '::1'], usage: 'server' as const };
    const server = await issueCertificate(ca, { ...loopback, days: 365 });
    const gateway = await issueCertificate(ca, { ...loopback, days: 365 });
    fs.writeFileSync(p.caCertPath, ca.certPem, { mode: 0o644 });
    fs.writeFileSync(p.serverCertPath, server.certPem, { mode: 0o644 });
    writeSecret(p.serverKeyPath, server.keyPem);
    fs.writeFileSync(p.gatewayCertPath, gateway.certPem, { mode: 0o644 });
    writeSecret(p.gatewayKeyPath, gateway.keyPem);
    created.push('dev CA', 'codec server certificate', 'gateway certificate');
  }
  if (!fs.existsSync(p.gatewayAccessKeyPath)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    writeSecret(p.gatewayAccessKeyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    created.push('gateway access-token signing key');
  }
  if (!fs.existsSync(p.issuerPrivateKeyPath) || !fs.existsSync(p.issuerPublicKeyPath)) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    writeSecret(p.issuerPrivateKeyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    fs.writeFileSync(p.issuerPublicKeyPath, publicKey.export({ type: 'spki', format: 'pem' }).toString(), {
      mode: 0o644,
    });
    created.push('dev token issuer key');
  }
  return { ...p, created };
}
