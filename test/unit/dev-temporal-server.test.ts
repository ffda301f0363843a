import { Connection } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../../lib/domain.js';
import { InfrastructureUnavailableError } from '../../lib/errors/index.js';
import { randomFreePort } from '../../dev/ports.js';
import { ensureSearchAttributes, productSearchAttributes, waitForTemporal } from '../../dev/temporal-server.js';
import { testEnv } from '../harness.js';

describe('Temporal dev server (from the global setup)', () => {
  it('has the product search attributes registered', async () => {
    const { temporalAddress, namespace } = testEnv();
    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const listed = await connection.operatorService.listSearchAttributes({ namespace });
      for (const name of Object.values(SEARCH_ATTRIBUTES))
        expect(Object.keys(listed.customAttributes ?? {})).toContain(name);
    } finally {
      await connection.close();
    }
    expect(Object.keys(productSearchAttributes()).sort()).toEqual(Object.values(SEARCH_ATTRIBUTES).sort());
    expect(await ensureSearchAttributes(temporalAddress, namespace)).toEqual([]);
  });

  it('waitForTemporal gives up with an InfrastructureUnavailableError naming the address', async () => {
    const address = `127.0.0.1:${await randomFreePort()}`;
    const attempt = waitForTemporal(address, { namespace: 'default', timeoutMs: 1_000 });
    await expect(attempt).rejects.toBeInstanceOf(InfrastructureUnavailableError);
    await expect(attempt).rejects.toThrow(address);
  });
});
