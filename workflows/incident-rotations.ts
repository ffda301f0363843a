/**
 * The child key rotations of an incident (eradication) and what recovery may assume about them. A
 * rotation is ready for recovery once it has switched to its new key (it signals `rotationSwitched`)
 * or completed. One that failed or rolled back leaves the possibly compromised key in use, so it
 * blocks recovery until the commander retries it (a new child) or overrides it (audited, four eyes,
 * with a reason). Incidents recorded before this gate (patch `recovery-gated-by-rotation-outcome`)
 * treat any ended rotation as ready, as they did.
 */
import { condition, patched, startChild } from '@temporalio/workflow';
import type { ScopedIntegration } from '../lib/incidents/scope.js';

export type RotationOutcome = 'running' | 'switched' | 'completed' | 'rolled-back' | 'failed';

/** One rotation of the incident, by its plan name (`signing-key/<integration>`, `tenant-dek/<tenant>`, `kek`, …). */
export interface RotationStatus {
  rotation: string;
  /** The current attempt's workflow id (a retry gets `…/retry-<n>`). */
  workflowId: string;
  attempts: number;
  outcome: RotationOutcome;
  overriddenBy?: string;
  overrideReason?: string;
}

export interface RotationPlan {
  rotation: string;
  workflowId: string;
  args: Record<string, unknown>;
}

export interface RotationPlanInput {
  incidentId: string;
  scope: string;
  declaredBy: string;
  rotationGraceSeconds?: number;
  vendorJwksCacheSeconds?: number;
}

type Log = (step: string, actor: string, detail?: Record<string, string | number | boolean | string[]>) => void;

/**
 * Child rotations for the keys in scope: signing keys and webhook secrets per integration, DEKs per tenant,
 * the KEK for `all`.
 */
export function rotationPlans(input: RotationPlanInput, affected: ScopedIntegration[]): RotationPlan[] {
  const base = {
    requestedBy: input.declaredBy,
    reason: `incident ${input.incidentId}`,
    incidentId: input.incidentId,
    ...(input.rotationGraceSeconds !== undefined ? { graceSeconds: input.rotationGraceSeconds } : {}),
  };
  // The scope's integrations stay revoked while the incident holds, so no assertion is signed while a
  // signing-key rotation waits for the vendor's JWKS cache; a short grace bounds that wait too.
  const jwksWait = input.vendorJwksCacheSeconds ?? input.rotationGraceSeconds;
  const signing = jwksWait !== undefined ? { vendorJwksCacheSeconds: jwksWait } : {};
  // Webhooks for the scope are refused while it is held, so a dual-acceptance window would only keep a
  // possibly leaked secret alive: the old secret is refused at once (the vendor gets the new one before
  // the commander approves resumption).
  const webhook = { graceSeconds: 0 };
  const plans: Array<{ id: string; args: Record<string, unknown> }> = [];
  for (const i of affected.filter((a) => a.status === 'active')) {
    // A secret or certificate integration has no signing key: its rotation could only fail (and block
    // recovery). Its credential is replaced at recovery, from the approval.
    const keyless =
      i.authMethod !== undefined &&
      i.authMethod !== 'private_key_jwt' &&
      patched('rotate-signing-keys-of-key-auth-only');
    if (!keyless)
      plans.push({
        id: `signing-key/${i.integrationId}`,
        args: { ...base, ...signing, kind: 'signing-key', tenantId: i.tenantId, integrationId: i.integrationId },
      });
    plans.push({
      id: `webhook-secret/${i.integrationId}`,
      args: { ...base, ...webhook, kind: 'webhook-secret', tenantId: i.tenantId, integrationId: i.integrationId },
    });
  }
  for (const tenantId of [...new Set(affected.map((a) => a.tenantId))])
    plans.push({ id: `tenant-dek/${tenantId}`, args: { ...base, kind: 'tenant-dek', tenantId } });
  if (input.scope === 'all') plans.push({ id: 'kek', args: { ...base, kind: 'kek' } });
  return plans.map((p) => ({
    rotation: p.id,
    workflowId: `incident/${input.incidentId}/rotate/${p.id}`,
    args: p.args,
  }));
}

/** One child rotation to its end; a failure is recorded, not fatal (the scope stays held either way). */
async function runRotation(
  workflowId: string,
  args: Record<string, unknown>,
  log: Log,
  system: string,
): Promise<'completed' | 'rolled-back' | 'failed'> {
  try {
    const child = await startChild('keyRotation', { workflowId, args: [args] });
    log('rotation-started', system, { workflowId });
    const result = (await child.result()) as { outcome?: string; steps?: unknown[] };
    log('rotation-finished', system, { workflowId, outcome: String(result.outcome ?? 'unknown') });
    return result.outcome === 'completed' ? 'completed' : 'rolled-back';
  } catch (err) {
    log('rotation-failed', system, { workflowId, error: err instanceof Error ? err.message.slice(0, 200) : 'unknown' });
    return 'failed';
  }
}

/** The incident's rotations, their outcomes, and the commander's retries and overrides. */
export class IncidentRotations {
  /** Live: the timeline query returns this array. */
  readonly statuses: RotationStatus[] = [];
  private readonly runs: Array<Promise<void>> = [];
  private readonly plans = new Map<string, RotationPlan>();
  private readonly pendingOverrides = new Set<string>();
  /** Set once traffic flows again: a rotation undone after that is reported, it cannot block any more. */
  recovered = false;

  /** Failed and rolled-back rotations block recovery (false only when replaying older incidents). */
  gated = false;

  constructor(
    private readonly log: Log,
    private readonly system: string,
  ) {}

  start(plan: RotationPlan): void {
    const status: RotationStatus = {
      rotation: plan.rotation,
      workflowId: plan.workflowId,
      attempts: 1,
      outcome: 'running',
    };
    this.plans.set(plan.rotation, plan);
    this.statuses.push(status);
    this.run(status, plan.args);
  }

  /** The child's `rotationSwitched` signal. */
  switched(workflowId: string): void {
    const status = this.statuses.find((s) => s.workflowId === workflowId);
    if (!status || status.outcome !== 'running') return;
    status.outcome = 'switched';
    this.log('rotation-switched', this.system, { workflowId });
  }

  get(rotation: string): RotationStatus | undefined {
    return this.statuses.find((s) => s.rotation === rotation);
  }

  isBlocking(s: RotationStatus): boolean {
    return this.gated && (s.outcome === 'rolled-back' || s.outcome === 'failed') && s.overriddenBy === undefined;
  }

  /** Rotations that keep recovery from going ahead until retried or overridden. */
  blocked(): RotationStatus[] {
    return this.statuses.filter((s) => this.isBlocking(s));
  }

  /** Rotations still on their way to the switch. */
  waiting(): RotationStatus[] {
    return this.statuses.filter((s) => s.outcome === 'running');
  }

  /** Starts the rotation again as a new child; returns its workflow id. */
  retry(rotation: string, by: string): string {
    const status = this.get(rotation)!;
    const plan = this.plans.get(rotation)!;
    status.attempts += 1;
    status.workflowId = `${plan.workflowId}/retry-${status.attempts - 1}`;
    status.outcome = 'running';
    this.log('rotation-retried', by, { rotation, workflowId: status.workflowId });
    this.run(status, { ...plan.args, requestedBy: by });
    return status.workflowId;
  }

  /** Records the override once it is audited (`audit` writes the audit event). */
  async override(rotation: string, by: string, reason: string, audit: () => Promise<void>): Promise<void> {
    this.pendingOverrides.add(rotation);
    try {
      await audit();
    } finally {
      this.pendingOverrides.delete(rotation);
    }
    const status = this.get(rotation)!;
    status.overriddenBy = by;
    status.overrideReason = reason;
    this.log('rotation-overridden', by, { rotation, workflowId: status.workflowId, outcome: status.outcome, reason });
  }

  overridePending(rotation: string): boolean {
    return this.pendingOverrides.has(rotation);
  }

  /** Resolves when every attempt so far, retries included, has ended. */
  async settled(): Promise<void> {
    for (let seen = -1; seen !== this.runs.length;) {
      seen = this.runs.length;
      await Promise.all(this.runs);
    }
  }

  private run(status: RotationStatus, args: Record<string, unknown>): void {
    const workflowId = status.workflowId;
    this.runs.push(
      runRotation(workflowId, args, this.log, this.system).then((outcome) => {
        if (status.workflowId !== workflowId) return; // superseded by a retry
        status.outcome = outcome;
        if (outcome !== 'completed' && this.recovered && this.gated) {
          this.log('rotation-undone-after-recovery', this.system, { rotation: status.rotation, workflowId, outcome });
        }
      }),
    );
  }
}

/**
 * Waits until every rotation has switched or completed. One that failed or rolled back blocks, with
 * the reason and the way forward on the timeline, until the commander retries or overrides it.
 */
export async function keysReadyForRecovery(
  tracker: IncidentRotations,
  setStatus: (s: 'recovery-blocked' | 'recovering') => void,
  log: Log,
  system: string,
): Promise<void> {
  for (;;) {
    const blocked = tracker.blocked();
    if (blocked.length > 0) {
      setStatus('recovery-blocked');
      log('recovery-blocked', system, {
        rotations: blocked.map((r) => `${r.rotation}: ${r.outcome} (${r.workflowId})`),
        reason: 'the old key may still be in use; recovery would restore traffic on it',
        wayForward:
          'ehrctl incident retry-rotation <id> <rotation>, ' +
          'or override-rotation <id> <rotation> --reason R (not the declarer)',
      });
      await condition(() => tracker.blocked().length === 0);
      continue;
    }
    if (tracker.waiting().length > 0) {
      setStatus('recovering');
      log('recovery-waiting-for-key-switch', system, { rotations: tracker.waiting().map((r) => r.workflowId) });
      await condition(() => tracker.waiting().length === 0 || tracker.blocked().length > 0);
      continue;
    }
    return;
  }
}
