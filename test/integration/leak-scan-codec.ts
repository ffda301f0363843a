/**
 * The payload codec for the end-of-run leak scan (test/leak-scan-setup.ts, EHR_LEAK_SCAN_CODEC_MODULE):
 * the same codec and keys the tests' workers and clients use, so every encrypted history is really scanned.
 * Opened lazily (a run without PostgreSQL/Temporal never connects); its small pool lets the process exit
 * when idle and ignores errors after PostgreSQL stops.
 */
import pg from 'pg';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import type { TestInfra } from '../harness.js';

export function createLeakScanCodec(infra: TestInfra): PayloadCodec {
  let codec: Promise<PayloadCodec> | undefined;
  const open = () => {
    if (!infra.databaseUrl) throw new Error('the leak-scan codec needs the test PostgreSQL (EHR_TEST_INFRA=none?)');
    const pool = new pg.Pool({
      connectionString: infra.databaseUrl,
      max: 2,
      idleTimeoutMillis: 1_000,
      allowExitOnIdle: true,
    });
    pool.on('error', () => undefined);
    return openPayloadCodec({ EHR_KEK_DIR: infra.kekDir }, { pool, actor: 'test:leak-scan' });
  };
  return {
    encode: async (payloads: Payload[]) => (await (codec ??= open())).encode(payloads),
    decode: async (payloads: Payload[]) => (await (codec ??= open())).decode(payloads),
  };
}
