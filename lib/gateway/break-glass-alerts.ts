/**
 * Break-glass alerts: a structured log event and, when EHR_BREAK_GLASS_ALERT_URL names one, a POST to the alert
 * hook (a chat or paging webhook). The body carries ids, codes, scope strings and times only — never the reason
 * text, never patient data. The hook URL is a secret (such URLs embed their token): it is given by reference,
 * resolved when an alert is sent, and never logged or put in an error.
 */
import { resolveSecret } from '../config/secrets.js';
import { AlertHookError, ConfigError } from '../errors/index.js';
import type { BreakGlassRecord } from './break-glass-repository.js';

export const BREAK_GLASS_ALERT_EVENTS = [
  'break-glass.granted',
  'break-glass.review-reminder',
  'break-glass.review-escalated',
] as const;
export type BreakGlassAlertEvent = (typeof BREAK_GLASS_ALERT_EVENTS)[number];

export interface BreakGlassAlert {
  event: BreakGlassAlertEvent;
  grantId: string;
  consumerId: string;
  scopes: string[];
  reasonCode: string;
  requestedBy: string;
  grantedAt: string;
  expiresAt: string;
  reviewWorkflowId: string;
  /** When the alert was raised. */
  at: string;
}

export function breakGlassAlert(event: BreakGlassAlertEvent, g: BreakGlassRecord, at: Date): BreakGlassAlert {
  return {
    event,
    grantId: g.id,
    consumerId: g.consumerId,
    scopes: g.scopes,
    reasonCode: g.reasonCode,
    requestedBy: g.requestedBy,
    grantedAt: g.grantedAt.toISOString(),
    expiresAt: g.expiresAt.toISOString(),
    reviewWorkflowId: g.reviewWorkflowId,
    at: at.toISOString(),
  };
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** https, or plain http to this machine (a local relay, the tests' listener); no credentials in the URL. */
export function checkAlertHookUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('EHR_BREAK_GLASS_ALERT_URL', 'the reference does not name a URL');
  }
  const transport = url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.test(url.hostname));
  if (!transport) throw new ConfigError('EHR_BREAK_GLASS_ALERT_URL', 'must be https (or http to a loopback host)');
  if (url.username !== '' || url.password !== '')
    throw new ConfigError('EHR_BREAK_GLASS_ALERT_URL', 'must not carry a user name or password');
  return url;
}

export interface AlertHookOptions {
  /** The hook's secret reference (EHR_BREAK_GLASS_ALERT_URL); undefined when no hook is configured. */
  ref: string | undefined;
  timeoutMs?: number;
}

/** POSTs the alert to the hook; false when none is configured. Any answer but 2xx is an AlertHookError. */
export async function postBreakGlassAlert(alert: BreakGlassAlert, opts: AlertHookOptions): Promise<boolean> {
  return postToAlertHook(alert, opts, 'ehr-connectors-break-glass');
}

/**
 * POSTs an alert (ids and codes only) as JSON to the operators' hook; false when none is configured. The hook's
 * URL is checked on every call (it is a secret reference that may change); any answer but 2xx is an AlertHookError.
 */
export async function postToAlertHook(alert: object, opts: AlertHookOptions, userAgent: string): Promise<boolean> {
  if (opts.ref === undefined) return false;
  const url = checkAlertHookUrl(await resolveSecret(opts.ref, { field: 'EHR_BREAK_GLASS_ALERT_URL' }));
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': userAgent },
      body: JSON.stringify(alert),
      redirect: 'error',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    throw new AlertHookError(null, timedOut ? 'timed out' : 'request failed (unreachable, refused or redirected)');
  }
  await res.body?.cancel().catch(() => undefined);
  if (res.status < 200 || res.status > 299) throw new AlertHookError(res.status, 'refused');
  return true;
}
