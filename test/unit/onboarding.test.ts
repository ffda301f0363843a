/**
 * Onboarding's pure parts: the read strategy an operator chooses, checked against what the vendor offers;
 * the public key as PEM for a vendor's form; a failed sync's root cause and its exit code; and the vendor
 * door sending no Authorization header (and asking for no token) for an open server — against a tiny HTTP
 * listener of the test's own.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState, TerminatedFailure } from '@temporalio/common';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, VendorAuthError } from '../../lib/errors/index.js';
import { parseReadChoice } from '../../lib/integrations/read-choice.js';
import { publicKeyPem } from '../../lib/integrations/onboarding.js';
import { profileFor } from '../../lib/vendors/profiles/index.js';
import { VendorClient } from '../../lib/vendors/vendor-client.js';
import type { IntegrationCredentials } from '../../lib/vendors/vendor-call.js';
import { syncFailureOf } from '../../client/sync-failure.js';

describe('read strategy choice', () => {
  const epic = profileFor('epic');
  const fhir = profileFor('fhir-server');

  it('stores the profile default (null) unchecked when nothing is given', () => {
    expect(parseReadChoice(epic, {})).toEqual({ strategy: null, options: {}, dropped: [] });
  });

  it('refuses what the vendor does not offer', () => {
    expect(() => parseReadChoice(epic, { strategy: 'search' })).toThrow(/does not allow system-wide searches/);
    expect(() => parseReadChoice(epic, { strategy: 'bulk', bulkLevel: 'system' })).toThrow(/offers \$export at: group/);
    expect(() => parseReadChoice(epic, { strategy: 'bulk' })).toThrow(/needs the Group id/);
    expect(() => parseReadChoice(profileFor('meditech'), { strategy: 'bulk' })).toThrow(/offers no Bulk Data/);
    expect(() => parseReadChoice(fhir, { strategy: 'patient' })).toThrow(/needs a roster/);
    expect(() => parseReadChoice(fhir, { strategy: 'sideways' })).toThrow(InvalidArgumentError);
  });

  it('refuses options that do not apply, and malformed ones', () => {
    expect(() => parseReadChoice(fhir, { strategy: 'search', groupId: 'g1' })).toThrow(/--group-id.*search/);
    expect(() => parseReadChoice(fhir, { strategy: 'bulk', typeFilter: ['Observation?code=a b'] })).toThrow(
      /--type-filter/,
    );
    expect(() => parseReadChoice(fhir, { overlapSeconds: '-5' })).toThrow(/--overlap-seconds/);
    expect(() => parseReadChoice(fhir, { overlapSeconds: '90000' })).toThrow(/--overlap-seconds/);
  });

  it('merges with the current choice and drops options the new strategy leaves behind', () => {
    const bulk = parseReadChoice(epic, { strategy: 'bulk', groupId: 'grp-1', typeFilter: ['Observation?x=1'] });
    expect(bulk).toEqual({
      strategy: 'bulk',
      options: { groupId: 'grp-1', typeFilter: ['Observation?x=1'] },
      dropped: [],
    });
    const patient = parseReadChoice(epic, { strategy: 'patient', overlapSeconds: 30 }, bulk);
    expect(patient).toEqual({
      strategy: 'patient',
      options: { groupId: 'grp-1', overlapSeconds: 30 },
      dropped: ['typeFilter'],
    });
    expect(parseReadChoice(fhir, { rosterSearch: '?active=true', strategy: 'patient' }).options).toEqual({
      rosterSearch: 'active=true',
    });
  });
});

describe('public key for the vendor form', () => {
  it.each([
    ['ES384', 'ec'],
    ['RS384', 'rsa'],
  ] as const)('%s: PEM of the same key as the JWK', async (alg, type) => {
    const { publicKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg, use: 'sig' };
    const pem = publicKeyPem(jwk);
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    const back = createPublicKey(pem);
    expect(back.asymmetricKeyType).toBe(type);
    const { kid: _k, alg: _a, use: _u, ...bare } = jwk;
    expect(back.export({ format: 'jwk' })).toEqual(bare);
  });
});

describe('a failed sync’s root cause', () => {
  it('walks workflow → activity → application failure to the stable code and its exit code', () => {
    const app = ApplicationFailure.create({
      type: 'NOT_FOUND',
      message: 'integration x not found',
      nonRetryable: true,
    });
    const activity = new ActivityFailure(
      'activity failed',
      'syncPage',
      '3',
      RetryState.NON_RETRYABLE_FAILURE,
      'id',
      app,
    );
    const err = new WorkflowFailedError('Workflow execution failed', activity, RetryState.NON_RETRYABLE_FAILURE);
    expect(syncFailureOf(err)).toEqual({
      status: 'failed',
      code: 'NOT_FOUND',
      message: 'integration x not found',
      exitCode: 3,
    });
    const vendor = ApplicationFailure.create({ type: 'VENDOR_AUTH_FAILED', message: 'refused' });
    expect(syncFailureOf(new WorkflowFailedError('x', vendor, RetryState.NON_RETRYABLE_FAILURE))).toMatchObject({
      code: 'VENDOR_AUTH_FAILED',
      exitCode: 1,
    });
  });

  it('names a terminated workflow, and passes anything else through', () => {
    const err = new WorkflowFailedError('x', new TerminatedFailure('by operator'), RetryState.NON_RETRYABLE_FAILURE);
    expect(syncFailureOf(err)).toMatchObject({ status: 'terminated', code: 'WORKFLOW_TERMINATED' });
    expect(syncFailureOf(new Error('connection refused'))).toBeUndefined();
  });
});

describe('the vendor door for auth method none', () => {
  const seen: Array<{ path: string; authorization?: string }> = [];
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(req.url?.startsWith('/closed') ? 401 : 200, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: [] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  function clientFor(baseUrl: string, authMethod: IntegrationCredentials['authMethod']) {
    const cred: IntegrationCredentials = {
      tenantId: 't',
      integrationId: 'itg-open',
      vendor: 'fhir-server',
      baseUrl,
      tokenUrl: '',
      clientId: '',
      scopes: [],
      authMethod,
      signAssertion: () => Promise.reject(new Error('no assertion for none')),
    };
    return new VendorClient({
      credentials: async () => cred,
      audit: async () => undefined,
      timeoutMs: 5_000,
      maxResponseBytes: 1024 * 1024,
      actor: 'worker:test',
    });
  }

  it('sends no Authorization header and requests no token', async () => {
    const client = clientFor(`${base}/open/fhir`, 'none');
    const res = await client.get('itg-open', `${base}/open/fhir/Patient?_count=10`, {
      correlationId: randomUUID(),
      purpose: 'test.read',
    });
    expect(res.status).toBe(200);
    expect(seen).toEqual([{ path: '/open/fhir/Patient?_count=10', authorization: undefined }]);
    expect(client.tokens.peek('itg-open')).toBeUndefined();
  });

  it('turns a 401 into a non-retryable auth failure instead of asking for a token', async () => {
    seen.length = 0;
    const client = clientFor(`${base}/closed/fhir`, 'none');
    const err = await client
      .get('itg-open', `${base}/closed/fhir/Patient`, { correlationId: randomUUID(), purpose: 'test.read' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VendorAuthError);
    expect((err as VendorAuthError).retryable).toBe(false);
    expect(seen.map((s) => s.path)).toEqual(['/closed/fhir/Patient']);
  });
});
