/**
 * The Temporal notifiers (workers/outbox-notifier.ts) over a client connected on first use: a worker builds its
 * activities' dependencies before it has (or needs) a client of its own.
 */
import type { Client } from '@temporalio/client';
import type { ConflictNotifier, OutboxNotifier } from '../lib/writeback/notifier.js';
import { temporalConflictNotifier, temporalOutboxNotifier } from './outbox-notifier.js';

export function lazyOutboxNotifier(client: () => Promise<Client>, taskQueue: string): OutboxNotifier {
  return {
    async changesQueued(scope) {
      await temporalOutboxNotifier(await client(), taskQueue).changesQueued(scope);
    },
  };
}

export function lazyConflictNotifier(client: () => Promise<Client>, taskQueue: string): ConflictNotifier {
  return {
    async conflictOpened(conflict) {
      await temporalConflictNotifier(await client(), taskQueue).conflictOpened(conflict);
    },
  };
}
