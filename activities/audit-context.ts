import { Context } from '@temporalio/activity';
import type { AuditContext } from '../lib/audit/chain.js';

/**
 * The actor of an activity is the workflow that scheduled it; the correlation id ties every
 * audit event and vendor call of one workflow run together (it is also sent to the vendor).
 */
export function activityAuditContext(): AuditContext {
  const info = Context.current().info;
  const execution = info.workflowExecution ?? { workflowId: `activity:${info.activityId}`, runId: info.activityId };
  return { actor: `workflow:${execution.workflowId}`, correlationId: execution.runId };
}
