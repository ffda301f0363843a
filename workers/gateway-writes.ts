/**
 * The gateway process's side of write-back (issue 13): the OutboxNotifier that wakes an integration's writeBack
 * workflow after the gateway stored a local change (workers/outbox-notifier.ts, signal-with-start), over a lazy
 * Temporal client with the payload codec — as the break-glass requests' client is made. The gateway starts and
 * serves reads without Temporal; a write while Temporal is away is stored, and its notification fails (logged):
 * the change waits in the outbox for the workflow's next run.
 */
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../lib/config/schema.js';
import type { KekProvider } from '../lib/keys/kek-provider.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import type { Pool } from '../lib/store/pool.js';
import type { OutboxNotifier } from '../lib/writeback/notifier.js';
import { temporalOutboxNotifier } from './outbox-notifier.js';

export async function openWriteBackNotifier(
  config: Config,
  deps: { pool: Pool; actor: string; kek: KekProvider },
): Promise<{ notifier: OutboxNotifier; close(): Promise<void> }> {
  const codec = await openPayloadCodec(config, deps);
  const connection = Connection.lazy({ address: config.TEMPORAL_ADDRESS });
  const temporal = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: { payloadCodecs: [codec] },
  });
  return { notifier: temporalOutboxNotifier(temporal, config.TEMPORAL_TASK_QUEUE), close: () => connection.close() };
}
