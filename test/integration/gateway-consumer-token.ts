/**
 * A consumer registered with its own ES384 key, and an access token it gets the way a SMART Backend Services
 * client does: a signed client assertion posted to the gateway's token endpoint.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { addConsumer } from '../../lib/gateway/consumers.js';
import type { Pool } from '../../lib/store/pool.js';
import { uniqueId } from '../harness.js';
import { testActor } from './support.js';

export interface ConsumerToken {
  consumerId: string;
  accessToken: string;
}

export async function consumerWithToken(
  pool: Pool,
  tokenUrl: string,
  consumer: { tenantId: string; purpose: string; scopes: string },
): Promise<ConsumerToken> {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const consumerId = uniqueId('consumer');
  const keys = { kind: 'jwks' as const, jwks: { keys: [{ ...jwk, kid, alg: 'ES384' }] } };
  await addConsumer(pool, { id: consumerId, ...consumer, keys }, testActor);
  const assertion = await signClientAssertion({
    clientId: consumerId,
    audience: tokenUrl,
    kid,
    alg: 'ES384',
    privateKey,
  });
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: consumer.scopes,
    }),
  });
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}`);
  return { consumerId, accessToken: ((await res.json()) as { access_token: string }).access_token };
}
