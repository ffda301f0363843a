/**
 * Vitest global setup: the broker of the run's shared HAPI FHIR server (test/interop/hapi-shared.ts). It costs a
 * loopback listener; the JVM starts only when an interop file asks for a partition, and teardown stops it.
 */
import type { TestProject } from 'vitest/node';
import { StopList } from '../../dev/stop-list.js';
import { startHapiBroker } from './hapi-shared-broker.js';

const log = (line: string) => console.log(`[hapi-shared] ${line}`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops = new StopList();
  const broker = await startHapiBroker({ stops, log });
  project.provide('hapiBroker', broker.url);
  return async () => {
    await broker.close();
    if (broker.started()) log('stopping the shared HAPI FHIR server');
    await stops.stopAll((name, err) => log(`teardown: stopping ${name} failed: ${String(err)}`));
  };
}
