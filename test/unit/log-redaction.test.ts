/**
 * Logs without PHI or secrets (DESIGN §4 invariants 1 and 11): what actually reaches the log
 * stream when code logs secrets, whole FHIR resources or PHI-bearing fields by mistake.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log/logger.js';
import { generateResource } from '../../sandbox/resources.js';

// Synthetic, obviously fake values only.
const FAKE_TOKEN = 'fake-access-token-0123456789';
const FAKE_PEM = '-----BEGIN PRIVATE KEY-----\nMIIFAKEFAKEFAKEFAKE\n-----END PRIVATE KEY-----';
const FAKE_JWT = 'eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJmYWtlLWNsaWVudCJ9.ZmFrZS1zaWduYXR1cmUtZmFrZS1zaWduYXR1cmU';

function capture(): {
  logger: ReturnType<typeof createLogger>;
  lines: () => Array<Record<string, unknown>>;
  raw: () => string;
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ level: 'info', name: 'test', destination });
  return {
    logger,
    raw: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('log redaction', () => {
  it('censors credentials wherever they sit in a logged object', () => {
    const { logger, raw, lines } = capture();
    logger.info(
      {
        headers: {
          authorization: `Bearer ${FAKE_TOKEN}`,
          cookie: 'sid=fake-cookie-value',
          'set-cookie': ['sid=fake-cookie-value'],
        },
        token: { access_token: FAKE_TOKEN },
        grant: { access_token: FAKE_TOKEN, refresh_token: FAKE_TOKEN, token_type: 'Bearer', expires_in: 300 },
        request: { body: { client_assertion: FAKE_JWT, client_secret: 'fake-client-secret' } },
        config: {
          DATABASE_URL: 'postgres://app:fake-db-pw@db.example/ehr',
          CODEC_TLS_KEY: 'file:/run/secrets/key',
          EHR_SECRETS_DIR: '/var/lib/ehr/secrets',
        },
        deep: {
          a: { b: { c: { password: 'fake-password', privateKey: FAKE_PEM, webhookSecret: 'fake-webhook-secret' } } },
        },
        tokenUrl: 'https://vendor.example/token',
        privateKeyRef: 'file:/var/lib/ehr/secrets/i-1.pem',
      },
      'calling the vendor',
    );
    const text = raw();
    for (const secret of [
      FAKE_TOKEN,
      'fake-cookie-value',
      'fake-client-secret',
      'fake-db-pw',
      'fake-password',
      'MIIFAKE',
      'fake-webhook-secret',
      FAKE_JWT,
    ]) {
      expect(text.includes(secret), `a secret reached the log (${secret.slice(0, 8)}…)`).toBe(false);
    }
    const [line] = lines();
    // References, paths and endpoints stay readable: they are how an operator finds a problem.
    expect(line!.tokenUrl).toBe('https://vendor.example/token');
    expect(line!.privateKeyRef).toBe('file:/var/lib/ehr/secrets/i-1.pem');
    expect((line!.config as Record<string, unknown>).EHR_SECRETS_DIR).toBe('/var/lib/ehr/secrets');
    expect(line!.token).toBe('[redacted]');
    expect(line!.grant).toEqual({
      access_token: '[redacted]',
      refresh_token: '[redacted]',
      token_type: 'Bearer',
      expires_in: 300,
    });
  });

  it('scrubs secrets out of messages and error messages', () => {
    const { logger, raw, lines } = capture();
    logger.warn(`retrying with Bearer ${FAKE_TOKEN} against postgres://app:fake-db-pw@db.example/ehr`);
    const err = new Error(`could not parse ${FAKE_PEM}`);
    logger.error({ err }, 'key load failed');
    const text = raw();
    expect(text).not.toContain(FAKE_TOKEN);
    expect(text).not.toContain('fake-db-pw');
    expect(text).not.toContain('MIIFAKE');
    expect(lines()[0]!.msg).toBe('retrying with Bearer [redacted] against postgres://app:[redacted]@db.example/ehr');
    expect((lines()[1]!.err as { message: string }).message).toBe('could not parse [redacted private key]');
    expect(err.message).toContain('MIIFAKE'); // the caller's error object is not mutated
  });

  it('refuses whole FHIR resources and bundles, however they are passed', () => {
    const { logger, raw, lines } = capture();
    const patient = generateResource({ seed: 9, patientCount: 5 }, 'Patient', 1, 1, Date.UTC(2024, 0, 1));
    const name = (patient.name as Array<{ family: string }>)[0]!.family;
    logger.info(patient, 'as the merge object');
    logger.info({ resource: patient, page: 3 }, 'nested');
    logger.info({ bundle: { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: patient }] } }, 'bundle');
    logger.info('interpolated %j', patient);
    logger.child({ resource: patient }).info('child binding');
    expect(raw()).not.toContain(name);
    const [merge, nested, bundle, interpolated, child] = lines();
    expect(merge).toMatchObject({ resourceType: 'Patient', id: '[redacted]', refused: 'fhir-resource' });
    expect(nested).toMatchObject({
      resource: { resourceType: 'Patient', id: '[redacted]', refused: 'fhir-resource' },
      page: 3,
    });
    expect(bundle!.bundle).toEqual({ resourceType: 'Bundle', id: '[redacted]', refused: 'fhir-resource' });
    expect(interpolated!.msg).toBe(
      'interpolated {"resourceType":"Patient","id":"[redacted]","refused":"fhir-resource"}',
    );
    expect(child!.resource).toEqual({ resourceType: 'Patient', id: '[redacted]', refused: 'fhir-resource' });
  });

  it('censors PHI-bearing fields, but keeps ids, counts and codes', () => {
    const { logger, raw, lines } = capture();
    logger.info(
      {
        patient: {
          name: [{ family: 'Synthfamily' }],
          birthDate: '1970-01-01',
          telecom: [{ value: '555-0100-1234' }],
          address: [{ line: ['1 Synthetic Way'] }],
        },
        identifier: [{ value: 'SYN-MRN-00000001' }],
        note: [{ text: 'Synthetic note about Synthfamily' }],
        tenantId: 't-1',
        resourceType: 'Observation',
        count: 50,
        code: 'VENDOR_HTTP_404',
      },
      'page stored',
    );
    const text = raw();
    for (const phi of ['Synthfamily', '1970-01-01', '555-0100-1234', 'Synthetic Way', 'SYN-MRN-00000001'])
      expect(text).not.toContain(phi);
    expect(lines()[0]).toMatchObject({
      tenantId: 't-1',
      resourceType: 'Observation',
      count: 50,
      code: 'VENDOR_HTTP_404',
      identifier: '[phi-redacted]',
      note: '[phi-redacted]',
    });
    expect((lines()[0]!.patient as Record<string, unknown>).name).toBe('[phi-redacted]');
  });

  it('keeps the logger name and survives cycles and binary', () => {
    const { logger, lines } = capture();
    const cyclic: Record<string, unknown> = { id: 'x' };
    cyclic.self = cyclic;
    logger.info({ cyclic, payload: Buffer.from('{"family":"Synthfamily"}') }, 'odd shapes');
    const [line] = lines();
    expect(line!.name).toBe('test');
    expect(line!.cyclic).toEqual({ id: 'x', self: '[circular]' });
    expect(line!.payload).toBe('[binary 24 bytes]');
  });
});
