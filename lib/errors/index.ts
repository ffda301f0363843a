/**
 * The one errors module. Every error the product raises on purpose is an EhrError with a stable
 * `code` (used as the Temporal ApplicationFailure type), readonly context fields that are safe to
 * show (identifiers, statuses, counts — never PHI, never secrets), and a retry class.
 * `toApplicationFailure` is the single place where errors cross the activity boundary.
 */
import { ApplicationFailure } from '@temporalio/common';

export abstract class EhrError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  /** When the peer told us how long to wait (Retry-After), in milliseconds. */
  readonly retryAfterMs: number | undefined = undefined;
  override get name(): string {
    return this.constructor.name;
  }
}

export class ConfigError extends EhrError {
  readonly code = 'CONFIG_INVALID';
  readonly retryable = false;
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`configuration ${field}: ${problem}`);
  }
}

/**
 * A secret reference stored for an integration names something no stored reference may name
 * (lib/config/stored-secret-refs.ts): `rule` is a stable code for audit rows; neither the message nor
 * the error ever quotes the reference or what it points at.
 */
export class SecretRefRefusedError extends ConfigError {
  constructor(
    field: string,
    readonly rule: string,
    problem: string,
  ) {
    super(field, problem);
  }
}

export class InfrastructureUnavailableError extends EhrError {
  readonly code = 'INFRASTRUCTURE_UNAVAILABLE';
  readonly retryable = true;
  constructor(
    readonly component: 'temporal' | 'postgres' | 'sandbox' | 'kek' | 'codec',
    readonly address: string,
    readonly hint: string,
  ) {
    super(`${component} is not reachable at ${address}: ${hint}`);
  }
}

export class NotFoundError extends EhrError {
  readonly code = 'NOT_FOUND';
  readonly retryable = false;
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${JSON.stringify(id)} does not exist`);
  }
}

export class ConflictError extends EhrError {
  readonly code = 'CONFLICT';
  readonly retryable = false;
  constructor(
    readonly entity: string,
    readonly id: string,
    detail = 'already exists',
  ) {
    super(`${entity} ${JSON.stringify(id)} ${detail}`);
  }
}

export class InvalidArgumentError extends EhrError {
  readonly code = 'INVALID_ARGUMENT';
  readonly retryable = false;
  constructor(
    readonly argument: string,
    readonly problem: string,
  ) {
    super(`${argument}: ${problem}`);
  }
}

export class PolicyViolationError extends EhrError {
  readonly code = 'POLICY_VIOLATION';
  readonly retryable = false;
  constructor(
    readonly rule: string,
    detail: string,
  ) {
    super(`${rule}: ${detail}`);
  }
}

/** A vendor answered with an HTTP error status. `path` never includes the query string. */
export class VendorHttpError extends EhrError {
  readonly code: string;
  readonly retryable: boolean;
  override readonly retryAfterMs: number | undefined;
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    retryAfterMs?: number,
    /** The first issue code of the OperationOutcome the vendor sent with it, when asked for (a FHIR code, no text). */
    readonly outcomeCode?: string,
  ) {
    super(`vendor answered ${status} to ${method} ${path}${outcomeCode ? ` (OperationOutcome ${outcomeCode})` : ''}`);
    this.code = status === 429 ? 'VENDOR_RATE_LIMITED' : status >= 500 ? 'VENDOR_UNAVAILABLE' : `VENDOR_HTTP_${status}`;
    this.retryable = status === 408 || status === 429 || status >= 500;
    this.retryAfterMs = retryAfterMs;
  }
}

export class VendorNetworkError extends EhrError {
  readonly code = 'VENDOR_NETWORK';
  readonly retryable = true;
  constructor(
    readonly method: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`network failure on ${method} ${path}: ${reason}`);
  }
}

export class VendorAuthError extends EhrError {
  readonly code = 'VENDOR_AUTH_FAILED';
  readonly retryable: boolean;
  constructor(
    readonly integrationId: string,
    readonly reason: string,
    retryable = false,
  ) {
    super(`authentication with the vendor failed for integration ${integrationId}: ${reason}`);
    this.retryable = retryable;
  }
}

export class TlsPolicyError extends EhrError {
  readonly code = 'TLS_REQUIRED';
  readonly retryable = false;
  constructor(readonly host: string) {
    super(`refusing plain http to ${host}: TLS is required except for loopback sandbox vendors`);
  }
}

export class ResponseTooLargeError extends EhrError {
  readonly code = 'VENDOR_RESPONSE_TOO_LARGE';
  readonly retryable = false;
  constructor(
    readonly path: string,
    readonly limitBytes: number,
  ) {
    super(`vendor response for ${path} exceeded ${limitBytes} bytes`);
  }
}

/** A vendor page we cannot trust: nothing from it is written. */
/** An integration's read strategy cannot run as configured (e.g. Group `$export` with no group id). */
export class ReadPlanError extends EhrError {
  readonly code = 'READ_PLAN_INVALID';
  readonly retryable = false;
  constructor(
    readonly integrationId: string,
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`integration ${integrationId} cannot be read: ${problem} (fix: ${fix})`);
  }
}

export class MalformedVendorDataError extends EhrError {
  readonly code = 'VENDOR_DATA_MALFORMED';
  readonly retryable = false;
  constructor(
    readonly resourceType: string,
    readonly reason: string,
  ) {
    super(`malformed ${resourceType} page from vendor: ${reason}`);
  }
}

export class DecryptionError extends EhrError {
  readonly code = 'DECRYPTION_FAILED';
  readonly retryable = false;
  constructor(readonly reason: string) {
    super(`decryption failed: ${reason}`);
  }
}

export class AuditWriteError extends EhrError {
  readonly code = 'AUDIT_WRITE_FAILED';
  readonly retryable = true;
  constructor(
    readonly action: string,
    readonly reason: string,
  ) {
    super(`audit event ${action} could not be written (${reason}); the operation it records was not performed`);
  }
}

/** Errors we did not classify are retryable: the retry policy's attempt limit bounds them. */
export function toApplicationFailure(err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof EhrError) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.code,
      nonRetryable: !err.retryable,
      nextRetryDelay: err.retryable && err.retryAfterMs !== undefined ? err.retryAfterMs : undefined,
    });
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error';
  return ApplicationFailure.create({ message, type: 'UNCLASSIFIED', nonRetryable: false });
}

export function errorCode(err: unknown): string {
  if (err instanceof EhrError) return err.code;
  if (err instanceof ApplicationFailure && err.type) return err.type;
  return 'UNCLASSIFIED';
}

export class VendorTlsError extends EhrError {
  readonly code = 'VENDOR_TLS_FAILED';
  readonly retryable = false;
  constructor(
    readonly method: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`TLS with the vendor failed on ${method} ${path}: ${reason}`);
  }
}

/** The integration was revoked or suspended: no vendor call may be made with its credentials. */
export class IntegrationRevokedError extends EhrError {
  readonly code = 'INTEGRATION_REVOKED';
  readonly retryable = false;
  constructor(
    readonly integrationId: string,
    readonly status: string,
  ) {
    super(`integration ${integrationId} is ${status}: vendor calls are refused until it is restored`);
  }
}

/**
 * The integration was registered before the vendor issued its client id: nothing can be asked of the vendor
 * until `ehrctl integrations update <id> --client-id …` sets it.
 */
export class ClientIdPendingError extends EhrError {
  readonly code = 'INTEGRATION_PENDING_CLIENT_ID';
  readonly retryable = false;
  constructor(readonly integrationId: string) {
    super(
      `integration ${integrationId} is pending-client-id (the vendor has not issued one): set it with ` +
        `\`ehrctl integrations update ${integrationId} --client-id <id> --reason <text>\``,
    );
  }
}

/** The vendor refused a resource type with 403: it no longer grants our scope for it (least privilege narrowed). */
export class ScopeNotGrantedError extends EhrError {
  readonly code = 'VENDOR_SCOPE_NOT_GRANTED';
  readonly retryable = false;
  constructor(
    readonly integrationId: string,
    readonly resourceType: string,
  ) {
    super(`the vendor refused ${resourceType} for integration ${integrationId} (HTTP 403): its scope is not granted`);
  }
}

/**
 * The vendor's SMART configuration lists `scopes_supported` and none of them reads this type: the server
 * does not hold it, so its scope is not requested (a token request with it would fail `invalid_scope`
 * for every type) and the sync skips the type with this code.
 */
export class ScopeNotAdvertisedError extends EhrError {
  readonly code = 'VENDOR_SCOPE_NOT_ADVERTISED';
  readonly retryable = false;
  constructor(
    readonly integrationId: string,
    readonly resourceType: string,
  ) {
    super(`the vendor does not advertise a read scope for ${resourceType} (integration ${integrationId})`);
  }
}

/**
 * The integration's circuit breaker is open (lib/vendors/circuit-breaker.ts): the vendor failed
 * repeatedly, so calls fail fast until the cool-down ends. Retryable; `retryAfterMs` is the
 * remaining cool-down, so Temporal's next attempt is the half-open probe.
 */
export class CircuitOpenError extends EhrError {
  readonly code = 'VENDOR_CIRCUIT_OPEN';
  readonly retryable = true;
  override readonly retryAfterMs: number;
  constructor(
    readonly integrationId: string,
    retryAfterMs: number,
    readonly lastErrorCode: string | null,
  ) {
    super(
      `circuit breaker for integration ${integrationId} is open after repeated vendor ` +
        `failures${lastErrorCode ? ` (${lastErrorCode})` : ''}; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * A declared incident holds the scope (lib/incidents/holds.ts): exports, webhooks and direct vendor writes
 * are refused.
 */
export class ScopeUnderIncidentError extends EhrError {
  readonly code = 'SCOPE_UNDER_INCIDENT';
  readonly retryable = false;
  constructor(
    readonly operation: string,
    readonly incidentId: string,
    readonly scope: string,
  ) {
    super(`${operation} is refused: scope ${scope} is held by incident ${incidentId}`);
  }
}

/** A key rotation failed after its first change and compensated: the old key is in use again. */
export class KeyRotationRolledBackError extends EhrError {
  readonly code = 'KEY_ROTATION_ROLLED_BACK';
  readonly retryable = false;
  constructor(
    readonly workflowId: string,
    readonly reason: string,
  ) {
    super(`key rotation ${workflowId} rolled back: ${reason}`);
  }
}

/** The Bulk Data steps a failure can name (workflows/bulk-export.ts). */
export type BulkStep = 'kick-off' | 'status' | 'manifest' | 'file' | 'error-file' | 'deleted-file';

/**
 * A Bulk Data `$export` cannot go on: the vendor refused the kick-off or failed the job (4xx), the manifest
 * is not what the IG describes, or a URL it gave points where we may not go. Names the step and, when the
 * vendor sent one, its OperationOutcome issue code; never a URL's query or a file's content.
 */
export class BulkExportError extends EhrError {
  readonly retryable = false;
  constructor(
    readonly code: 'BULK_KICKOFF_REFUSED' | 'BULK_EXPORT_FAILED' | 'BULK_MANIFEST_INVALID' | 'BULK_HOST_REFUSED',
    readonly step: BulkStep,
    readonly detail: string,
    readonly outcomeCode?: string,
  ) {
    super(`bulk export ${step}: ${detail}${outcomeCode ? ` (OperationOutcome ${outcomeCode})` : ''}`);
  }
}

/** A Bulk Data file answered 404/410: the export's files expired before we read them (one new kick-off follows). */
export class BulkFileExpiredError extends EhrError {
  readonly code = 'BULK_FILE_EXPIRED';
  readonly retryable = false;
  constructor(
    readonly fileIndex: number,
    readonly status: number,
  ) {
    super(`bulk export file ${fileIndex} is gone (HTTP ${status}): the export expired`);
  }
}

/**
 * The break-glass alert hook (EHR_BREAK_GLASS_ALERT_URL) did not take an alert: an HTTP status, or none when the
 * request failed (timeout, refused, a redirect). Retryable: the alert activity tries again. Never names the URL.
 */
export class AlertHookError extends EhrError {
  readonly code = 'ALERT_HOOK_FAILED';
  readonly retryable = true;
  constructor(
    readonly status: number | null,
    readonly problem: string,
  ) {
    super(`break-glass alert hook: ${status === null ? problem : `HTTP ${status}`}`);
  }
}

/**
 * The mediation gateway refuses a consumer's request (workers/gateway.ts): `status` and `oauthError` are what
 * the caller is told (RFC 6749 / RFC 6750 codes, no detail); `reason` is the stable cause for the audit trail
 * only (e.g. `assertion-signature`, `jti-replayed`, `consumer-revoked`). Never carries a token or an assertion.
 */
export class GatewayRefusalError extends EhrError {
  readonly code = 'GATEWAY_REFUSED';
  readonly retryable = false;
  constructor(
    readonly status: 400 | 401 | 403 | 429 | 503,
    readonly oauthError: string,
    readonly reason: string,
    readonly consumerId?: string,
    readonly tenantId?: string,
    /** A 429's or 503's Retry-After. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`gateway refused the request (${status} ${oauthError}): ${reason}`);
  }
}

/**
 * Write-back met the vendor's 412 again and again: each re-read found a newer version by the time the update
 * arrived. Retryable: the activity tries again later (the change stays pending). Ids only.
 */
export class WriteBackContendedError extends EhrError {
  readonly code = 'WRITE_BACK_CONTENDED';
  readonly retryable = true;
  constructor(
    readonly changeId: string,
    readonly attempts: number,
  ) {
    super(`write-back of change ${changeId}: the vendor's version moved on ${attempts} times in a row (412)`);
  }
}

/** A change cannot be moved from its status by this operation (`ehrctl writes retry|cancel`). Ids only. */
export class OutboxTransitionError extends EhrError {
  readonly code = 'OUTBOX_TRANSITION_REFUSED';
  readonly retryable = false;
  constructor(
    readonly changeId: string,
    readonly status: string,
    readonly operation: string,
  ) {
    super(`change ${changeId} is ${status}: ${operation} is not possible`);
  }
}
