/**
 * Test-only workflow: a parent of one `keyRotation` child, as breach containment is — it records the
 * child's `rotationSwitched` signal and returns the child's result. Loaded by
 * test/integration/key-rotation-continue-as-new.test.ts through `workflowsPath`; the child runs on the
 * product worker's task queue.
 */
import { condition, setHandler, startChild } from '@temporalio/workflow';
import { rotationSwitchedSignal } from '../../../workflows/key-rotation-api.js';
import type { KeyRotationInput, KeyRotationResult } from '../../../workflows/key-rotation-api.js';

export interface RotationParentInput {
  childWorkflowId: string;
  childTaskQueue: string;
  rotation: KeyRotationInput;
}

export interface RotationParentResult {
  /** Workflow ids named by `rotationSwitched` signals, in arrival order. */
  switched: string[];
  /** Whether the switch arrived before the child finished (recovery waits for exactly that). */
  switchedBeforeResult: boolean;
  child: KeyRotationResult;
}

export async function rotationParent(input: RotationParentInput): Promise<RotationParentResult> {
  const switched: string[] = [];
  setHandler(rotationSwitchedSignal, (workflowId) => void switched.push(workflowId));
  const { childWorkflowId: workflowId, childTaskQueue: taskQueue, rotation } = input;
  const child = await startChild('keyRotation', { workflowId, taskQueue, args: [rotation] });
  let finished = false;
  const result = child.result().finally(() => (finished = true));
  await condition(() => switched.length > 0 || finished);
  const switchedBeforeResult = switched.length > 0 && !finished;
  return { switched, switchedBeforeResult, child: (await result) as KeyRotationResult };
}
