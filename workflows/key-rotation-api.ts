/**
 * What a key rotation shows its callers (workflows/key-rotation.ts): its input (with what a run that
 * continued as new carries), its steps and result, its `status` query, and the signal it sends a parent
 * once nothing new depends on the old key.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export type KeyKind = 'kek' | 'tenant-dek' | 'signing-key' | 'webhook-secret' | 'payload-key';

export interface KeyRotationInput {
  kind: KeyKind;
  tenantId?: string; // tenant-dek
  integrationId?: string; // signing-key, webhook-secret
  requestedBy: string; // the actor recorded in every audit event
  reason: string; // no PHI
  incidentId?: string; // set when started by containment
  /** Durations in seconds; defaults are production values (days), tests pass seconds. */
  // KEK: before raising the decryption floor; DEK: before destroying the old key; webhook: dual acceptance
  graceSeconds?: number;
  vendorJwksCacheSeconds?: number; // signing key: wait before switching kid (default from the vendor profile)
  batchSize?: number;
  /** Batches in one run before it continues as new (default 500); sooner when Temporal suggests it. */
  maxBatchesPerRun?: number;
  /** Set only by continueAsNew: where the previous run of this rotation stopped. */
  carried?: CarriedRotation;
}

/** A batch loop's phase: `switch` moves everything to the new key; `stragglers` runs after the grace period. */
export type BatchPhase = 'switch' | 'stragglers';

export interface CarriedRotation {
  steps: RotationStep[];
  /** The version the rotation created (KEK version or DEK version) and the one it replaces. */
  version: number;
  previous: number;
  phase: BatchPhase;
  /** Keys rewrapped or records re-encrypted so far in `phase`, over every run. */
  moved: number;
  continuedAsNew: number;
}

export interface RotationStep {
  step: string;
  at: string;
  detail?: Record<string, unknown>;
}

export interface KeyRotationResult {
  kind: KeyKind;
  steps: RotationStep[];
  outcome: 'completed' | 'rolled-back';
  /** How many times the rotation continued as new (its batch loops spanned that many more runs). */
  continuedAsNew?: number;
}

export const keyRotationStatusQuery = defineQuery<RotationStep[]>('status');
/**
 * Sent to the parent (breach containment) once nothing new depends on the old key any more — the
 * point after which recovery is safe; what follows is only the old key's grace period and retirement.
 */
export const rotationSwitchedSignal = defineSignal<[string]>('rotationSwitched');
