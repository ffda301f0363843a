/**
 * Standard Webhooks verification: a signed message is accepted; a tampered body, an old timestamp or
 * an unknown secret is refused; during a rotation both secrets are accepted, afterwards only the new.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook } from '../../lib/webhooks/verify.js';

const oldSecret = `whsec_${randomBytes(32).toString('base64')}`;
const newSecret = `whsec_${randomBytes(32).toString('base64')}`;
const now = 1_800_000_000;
const body = JSON.stringify({ type: 'appointment.updated', id: 'evt-synthetic-1' });

function message(secret: string, ts = now, payload = body) {
  return {
    headers: {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(ts),
      'webhook-signature': signWebhook(secret, 'msg_1', ts, payload),
    },
    payload,
  };
}

describe('webhook signature verification', () => {
  it('accepts a correctly signed message and refuses a tampered body', () => {
    const m = message(oldSecret);
    expect(verifyWebhook(m.headers, m.payload, [oldSecret], { nowSeconds: now })).toEqual({ ok: true, secretIndex: 0 });
    expect(verifyWebhook(m.headers, body.replace('updated', 'deleted'), [oldSecret], { nowSeconds: now })).toEqual({
      ok: false,
      reason: 'no-matching-signature',
    });
  });

  it('refuses a timestamp more than 300 s away, and missing headers', () => {
    const old = message(oldSecret, now - 301);
    expect(verifyWebhook(old.headers, old.payload, [oldSecret], { nowSeconds: now })).toEqual({
      ok: false,
      reason: 'timestamp-out-of-tolerance',
    });
    const edge = message(oldSecret, now - 300);
    expect(verifyWebhook(edge.headers, edge.payload, [oldSecret], { nowSeconds: now }).ok).toBe(true);
    expect(verifyWebhook({ 'webhook-id': 'msg_1' }, body, [oldSecret], { nowSeconds: now })).toEqual({
      ok: false,
      reason: 'missing-headers',
    });
  });

  it('accepts the old and new secret during rotation, then refuses the old one', () => {
    const byOld = message(oldSecret);
    const byNew = message(newSecret);
    // Dual-acceptance window: both secrets are accepted.
    expect(verifyWebhook(byOld.headers, byOld.payload, [newSecret, oldSecret], { nowSeconds: now })).toEqual({
      ok: true,
      secretIndex: 1,
    });
    expect(verifyWebhook(byNew.headers, byNew.payload, [newSecret, oldSecret], { nowSeconds: now })).toEqual({
      ok: true,
      secretIndex: 0,
    });
    // After the window: the old secret is retired.
    expect(verifyWebhook(byOld.headers, byOld.payload, [newSecret], { nowSeconds: now })).toEqual({
      ok: false,
      reason: 'no-matching-signature',
    });
  });

  it('accepts a message carrying several signatures when one of them matches', () => {
    const m = message(newSecret);
    const both = {
      ...m.headers,
      'webhook-signature': `${signWebhook(oldSecret, 'msg_1', now, body)} ${m.headers['webhook-signature']}`,
    };
    expect(verifyWebhook(both, body, [newSecret], { nowSeconds: now }).ok).toBe(true);
    expect(
      verifyWebhook({ ...m.headers, 'webhook-signature': 'v1,AAAA' }, body, [newSecret], { nowSeconds: now }).ok,
    ).toBe(false);
  });
});
