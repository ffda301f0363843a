/**
 * Containment's cancellation step reports every workflow it could not cancel instead of swallowing
 * the error, retries a transient failure, and counts a workflow that closed meanwhile as closed.
 * (The real cancellation against Temporal is in test/integration/breach-containment-recovery.test.ts.)
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { cancelEach, scopeQueries } from '../../activities/scope-workflows.js';

const run = (workflowId: string) => ({ workflowId, runId: 'r', type: 'webhookDeltaSync' });

describe('cancelling the workflows of an incident scope', () => {
  it('reports failures by workflow id, retries transient ones, and tells closed from refused', async () => {
    const calls = new Map<string, number>();
    const report = await cancelEach(
      [run('webhook-sync/t/a'), run('webhook-sync/t/b'), run('sync/t/a/x'), run('sync/t/c/y')],
      async (id) => {
        const n = (calls.get(id) ?? 0) + 1;
        calls.set(id, n);
        if (id === 'webhook-sync/t/b') throw new Error('frontend unavailable');
        if (id === 'sync/t/a/x' && n === 1) throw new Error('deadline exceeded');
        if (id === 'sync/t/c/y') throw new WorkflowNotFoundError('closed', id, undefined);
      },
      { inFlight: 2, attempts: 3, backoffMs: 1 },
    );
    expect(report.cancelled).toEqual(['sync/t/a/x', 'webhook-sync/t/a']);
    expect(report.alreadyClosed).toEqual(['sync/t/c/y']);
    expect(report.notCancelled).toEqual(['webhook-sync/t/b: Error: frontend unavailable']);
    expect(calls.get('webhook-sync/t/b')).toBe(3);
  });

  it('finds tenant-wide workflows only for a tenant or `all` scope', () => {
    expect(scopeQueries('integration:i-1', ['i-1'], ['t-1'], '')).toEqual(["IntegrationId IN ('i-1')"]);
    expect(scopeQueries('tenant:t-1', ['i-1', 'i-2'], ['t-1'], " AND ExecutionStatus = 'Running'")).toEqual([
      "IntegrationId IN ('i-1', 'i-2') AND ExecutionStatus = 'Running'",
      "TenantId IN ('t-1') AND ExecutionStatus = 'Running'",
    ]);
  });
});
