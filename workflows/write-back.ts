/**
 * writeBack (`write-back-<integration>`): sends an integration's queued outbox changes through the vendor door,
 * oldest first. Signal-with-started by whoever queues a change (lib/writeback/notifier.ts).
 *
 * CONTRACT STUB — the signal and input are fixed; the body is being built (issue 13 item 2).
 */
import { condition, defineSignal, setHandler } from '@temporalio/workflow';

export interface WriteBackInput {
  tenantId: string;
  integrationId: string;
}

/** Something was queued (or a refused change was retried): drain what is pending. Carries nothing. */
export const outboxChangedSignal = defineSignal('outboxChanged');

export async function writeBack(_input: WriteBackInput): Promise<void> {
  let woken = false;
  setHandler(outboxChangedSignal, () => {
    woken = true;
  });
  await condition(() => woken);
}
