/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): headers `webhook-id`,
 * `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated list of
 * `v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`. A message is accepted when any listed
 * signature matches any accepted secret (several during a rotation's dual-acceptance window), compared
 * in constant time, and its timestamp is within ±300 s (replay bound). Reasons never carry the secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_TOLERANCE_SECONDS = 300;

export interface WebhookHeaders {
  'webhook-id'?: string;
  'webhook-timestamp'?: string;
  'webhook-signature'?: string;
}

export type WebhookVerdict =
  | { ok: true; secretIndex: number }
  | { ok: false; reason: 'missing-headers' | 'bad-timestamp' | 'timestamp-out-of-tolerance' | 'no-matching-signature' };

/** Secrets as raw bytes; a `whsec_<base64>` string (the spec's format) is decoded, anything else taken as utf8. */
export function webhookSecretBytes(secret: string | Buffer): Buffer {
  if (Buffer.isBuffer(secret)) return secret;
  return secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

function hmac(secret: Buffer, id: string, timestamp: string, body: Buffer | string): Buffer {
  return createHmac('sha256', secret).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
}

/** The `webhook-signature` value for one secret (what a sender, or a test, puts on the message). */
export function signWebhook(
  secret: string | Buffer,
  id: string,
  timestampSeconds: number,
  body: Buffer | string,
): string {
  return `v1,${hmac(webhookSecretBytes(secret), id, String(timestampSeconds), body).toString('base64')}`;
}

export function verifyWebhook(
  headers: WebhookHeaders,
  body: Buffer | string,
  secrets: ReadonlyArray<string | Buffer>,
  opts: { nowSeconds?: number; toleranceSeconds?: number } = {},
): WebhookVerdict {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures) return { ok: false, reason: 'missing-headers' };
  if (!/^[0-9]{1,12}$/.test(timestamp)) return { ok: false, reason: 'bad-timestamp' };
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS))
    return { ok: false, reason: 'timestamp-out-of-tolerance' };
  const offered = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  // Every secret is checked against every signature (no early exit on the secret's position) so the
  // time taken does not reveal which secret matched.
  let matched = -1;
  secrets.forEach((secret, index) => {
    const expected = hmac(webhookSecretBytes(secret), id, timestamp, body);
    for (const sig of offered) {
      if (sig.length === expected.length && timingSafeEqual(sig, expected) && matched < 0) matched = index;
    }
  });
  return matched >= 0 ? { ok: true, secretIndex: matched } : { ok: false, reason: 'no-matching-signature' };
}
