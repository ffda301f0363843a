/** What a batch of reconciliation found and did, in counts (what the workflow history and the report carry). */
import type { Decision, RecordClass } from './decide.js';
import { RECORD_CLASSES } from './decide.js';

export const DECISION_COUNTS = [
  'localUpdated',
  'storedRemote',
  'tombstoned',
  'writeBacksQueued',
  'conflictsOpened',
  'ignoredLocalOnly',
  'unlistedFound',
  'malformedLines',
] as const;
export type DecisionCount = (typeof DECISION_COUNTS)[number];

export interface BatchTally {
  classes: Record<RecordClass, number>;
  decisions: Record<DecisionCount, number>;
}

export function emptyTally(): BatchTally {
  return {
    classes: Object.fromEntries(RECORD_CLASSES.map((c) => [c, 0])) as Record<RecordClass, number>,
    decisions: Object.fromEntries(DECISION_COUNTS.map((c) => [c, 0])) as Record<DecisionCount, number>,
  };
}

/** Counts a decision (write-backs and conflicts are counted as they are stored, not here). */
export function tallyDecision(tally: BatchTally, d: Decision): void {
  tally.classes[d.class] += 1;
  if (d.takeRemote.length > 0) tally.decisions.localUpdated += 1;
  if (d.storeRemote) tally.decisions.storedRemote += 1;
  if (d.tombstone) tally.decisions.tombstoned += 1;
  if (d.ignored.length > 0) tally.decisions.ignoredLocalOnly += 1;
}

export function addTally(into: BatchTally, from: BatchTally): void {
  for (const c of Object.keys(from.classes) as RecordClass[]) into.classes[c] += from.classes[c];
  for (const c of Object.keys(from.decisions) as DecisionCount[]) into.decisions[c] += from.decisions[c];
}
