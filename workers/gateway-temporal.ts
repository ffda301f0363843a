/**
 * The gateway process's Temporal side: one lazy client with the payload codec, shared by break-glass requests
 * (workers/gateway-break-glass.ts) and the OutboxNotifier that wakes an integration's writeBack workflow after the
 * gateway stored a local change (workers/outbox-notifier.ts, signal-with-start). The gateway starts and serves reads
 * without Temporal; a write while Temporal is away is stored, and its notification fails (logged): the change waits
 * in the outbox for the workflow's next run.
 */
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../lib/config/schema.js';
import type { KekProvider } from '../lib/keys/kek-provider.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import type { Pool } from '../lib/store/pool.js';

export async function openGatewayTemporal(
  config: Config,
  deps: { pool: Pool; actor: string; kek: KekProvider },
): Promise<{ client: Client; close(): Promise<void> }> {
  const codec = await openPayloadCodec(config, deps);
  const connection = Connection.lazy({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: { payloadCodecs: [codec] },
  });
  return { client, close: () => connection.close() };
}
