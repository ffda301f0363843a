/**
 * The test-file side of the run's shared HAPI FHIR server (the broker is hapi-shared-broker.ts, opened by the
 * global setup hapi-shared-setup.ts): a file asks for a partition of its own, the first one starting the JVM.
 */
import http from 'node:http';
import path from 'node:path';
import { expect, inject } from 'vitest';
import type { SharedHapiPartition } from './hapi-shared-broker.js';

export type { SharedHapiPartition } from './hapi-shared-broker.js';
export { startHapiBroker } from './hapi-shared-broker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared HAPI broker's URL (with its token), or '' when the global setup runs without it. */
    hapiBroker: string;
  }
}

/**
 * A new partition on the run's shared HAPI server (started now if this is the first file to ask), named after
 * the calling test file. Call it in a beforeAll: the first call may wait for the JVM (a minute or two).
 */
export async function sharedHapiPartition(
  options: { label?: string; broker?: string } = {},
): Promise<SharedHapiPartition> {
  const label = options.label ?? currentTestFile();
  const broker = options.broker ?? inject('hapiBroker');
  if (!broker) {
    throw new Error(
      'the shared HAPI FHIR server needs the broker of test/interop/hapi-shared-setup.ts in vitest globalSetup',
    );
  }
  const { status, body } = await post(`${broker}/partition`, JSON.stringify({ label }));
  const parsed = JSON.parse(body) as SharedHapiPartition & { error?: string };
  if (status !== 200) throw new Error(`the shared HAPI FHIR server: ${parsed.error ?? `broker answered ${status}`}`);
  return parsed;
}

function currentTestFile(): string {
  const file = expect.getState().testPath;
  return file ? path.basename(file).replace(/\.test\.ts$/, '') : 'interop';
}

/** node:http rather than fetch: fetch gives up on headers after 300 s, and a first start may build with Maven. */
function post(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.once('error', reject);
    req.end(body);
  });
}
