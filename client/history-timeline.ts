/**
 * A workflow history as an audit timeline: who started it and with what, each activity with its
 * attempts and outcome, signals with their senders, cancellation, continue-as-new and the close.
 * Payloads are summarised: `[encrypted]` unless they were decoded (through the codec server) first.
 */
import type { Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { isEncryptedPayload } from '../lib/crypto/payload-codec.js';

type History = temporal.api.history.v1.IHistory;
type Event = temporal.api.history.v1.IHistoryEvent;

export interface TimelineEntry {
  eventId: number;
  at: string;
  kind: string;
  /** Who caused it: the client identity, worker identity, or a signal's `by`. */
  who?: string;
  summary: string;
  /** Decoded (or `[encrypted]`) payload summary. */
  data?: string;
}

const num = (v: unknown): number =>
  v === null || v === undefined
    ? 0
    : typeof v === 'object' && 'toNumber' in v
      ? (v as { toNumber(): number }).toNumber()
      : Number(v);

function timeOf(e: Event): string {
  const t = e.eventTime;
  if (!t) return '';
  return new Date(num(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

function payloadValue(p: Payload): unknown {
  if (isEncryptedPayload(p)) return ENCRYPTED;
  const encoding = Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString('utf8');
  const data = Buffer.from(p.data ?? new Uint8Array());
  if (encoding === 'json/plain') {
    try {
      return JSON.parse(data.toString('utf8')) as unknown;
    } catch {
      return `[json/plain, ${data.length} bytes]`;
    }
  }
  if (encoding === 'binary/null') return null;
  return `[${encoding || 'unknown encoding'}, ${data.length} bytes]`;
}

const ENCRYPTED = Symbol('encrypted');

function summarise(payloads: Payload[] | null | undefined, decoded: boolean, max = 240): string | undefined {
  if (!payloads || payloads.length === 0) return undefined;
  const values = payloads.map(payloadValue);
  if (values.some((v) => v === ENCRYPTED)) return decoded ? '[encrypted: not decoded]' : '[encrypted]';
  if (!decoded) return `[${values.length} plain payload(s); use --decode]`;
  const text = values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function signalSender(payloads: Payload[] | null | undefined): string | undefined {
  const first = payloads?.[0];
  if (!first) return undefined;
  const v = payloadValue(first);
  return v !== null && typeof v === 'object' && typeof (v as { by?: unknown }).by === 'string'
    ? (v as { by: string }).by
    : undefined;
}

function failureText(f: temporal.api.failure.v1.IFailure | null | undefined): string {
  if (!f) return 'no failure details';
  const type =
    f.applicationFailureInfo?.type ??
    (f.timeoutFailureInfo
      ? 'Timeout'
      : f.canceledFailureInfo
        ? 'Cancelled'
        : f.terminatedFailureInfo
          ? 'Terminated'
          : 'Failure');
  const nonRetryable = f.applicationFailureInfo?.nonRetryable ? ', non-retryable' : '';
  return `${type}${nonRetryable}: ${f.message ?? ''}`.trim();
}

/** `decoded`: the history's payloads went through the codec server already. */
export function buildTimeline(history: History, decoded: boolean): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  const scheduled = new Map<number, { type: string; activityId: string }>();
  const started = new Map<number, { attempt: number; identity: string }>();
  for (const e of history.events ?? []) {
    const base = { eventId: num(e.eventId), at: timeOf(e) };
    const push = (entry: Omit<TimelineEntry, 'eventId' | 'at'>) => out.push({ ...base, ...entry });
    if (e.workflowExecutionStartedEventAttributes) {
      const a = e.workflowExecutionStartedEventAttributes;
      const how = a.continuedExecutionRunId
        ? ` (continued from run ${a.continuedExecutionRunId})`
        : a.attempt && a.attempt > 1
          ? ` (attempt ${a.attempt})`
          : '';
      push({
        kind: 'started',
        who: a.identity ?? undefined,
        summary: `${a.workflowType?.name ?? 'workflow'} on task queue ${a.taskQueue?.name ?? '?'}${how}`,
        data: summarise(a.input?.payloads, decoded),
      });
    } else if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      scheduled.set(base.eventId, { type: a.activityType?.name ?? '?', activityId: a.activityId ?? '' });
    } else if (e.activityTaskStartedEventAttributes) {
      const a = e.activityTaskStartedEventAttributes;
      started.set(num(a.scheduledEventId), { attempt: a.attempt ?? 1, identity: a.identity ?? '' });
    } else if (e.activityTaskCompletedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes;
      const s = scheduled.get(num(a.scheduledEventId));
      const st = started.get(num(a.scheduledEventId));
      push({
        kind: 'activity',
        who: st?.identity || a.identity || undefined,
        summary: `${s?.type ?? '?'} completed (attempt ${st?.attempt ?? 1})`,
        data: summarise(a.result?.payloads, decoded),
      });
    } else if (e.activityTaskFailedEventAttributes) {
      const a = e.activityTaskFailedEventAttributes;
      const s = scheduled.get(num(a.scheduledEventId));
      const st = started.get(num(a.scheduledEventId));
      push({
        kind: 'activity',
        who: st?.identity || a.identity || undefined,
        summary: `${s?.type ?? '?'} FAILED (attempt ${st?.attempt ?? 1}): ${failureText(a.failure)}`,
      });
    } else if (e.activityTaskTimedOutEventAttributes) {
      const a = e.activityTaskTimedOutEventAttributes;
      const s = scheduled.get(num(a.scheduledEventId));
      push({
        kind: 'activity',
        summary:
          `${s?.type ?? '?'} TIMED OUT (attempt ` +
          `${started.get(num(a.scheduledEventId))?.attempt ?? 1}): ${failureText(a.failure)}`,
      });
    } else if (e.activityTaskCanceledEventAttributes) {
      const a = e.activityTaskCanceledEventAttributes;
      push({
        kind: 'activity',
        who: a.identity ?? undefined,
        summary: `${scheduled.get(num(a.scheduledEventId))?.type ?? '?'} cancelled`,
      });
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const a = e.workflowExecutionSignaledEventAttributes;
      const by = decoded ? signalSender(a.input?.payloads) : undefined;
      push({
        kind: 'signal',
        who: by ?? a.identity ?? undefined,
        summary: `signal ${a.signalName ?? '?'}${by ? '' : ' (sender from the client identity)'}`,
        data: summarise(a.input?.payloads, decoded),
      });
    } else if (e.workflowExecutionCancelRequestedEventAttributes) {
      const a = e.workflowExecutionCancelRequestedEventAttributes;
      push({
        kind: 'cancel-requested',
        who: a.identity ?? undefined,
        summary: `cancellation requested${a.cause ? `: ${a.cause}` : ''}`,
      });
    } else if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      const a = e.workflowExecutionUpdateAcceptedEventAttributes;
      push({
        kind: 'update',
        who: a.acceptedRequest?.meta?.identity ?? undefined,
        summary: `update ${a.acceptedRequest?.input?.name ?? '?'} accepted`,
        data: summarise(a.acceptedRequest?.input?.args?.payloads, decoded),
      });
    } else if (e.startChildWorkflowExecutionInitiatedEventAttributes) {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      push({
        kind: 'child',
        summary: `child ${a.workflowType?.name ?? '?'} ${a.workflowId ?? ''} started`,
        data: summarise(a.input?.payloads, decoded),
      });
    } else if (e.workflowExecutionContinuedAsNewEventAttributes) {
      const a = e.workflowExecutionContinuedAsNewEventAttributes;
      push({
        kind: 'continued-as-new',
        summary: `continued as new run ${a.newExecutionRunId ?? '?'} (see --run-id)`,
        data: summarise(a.input?.payloads, decoded),
      });
    } else if (e.workflowExecutionCompletedEventAttributes) {
      push({
        kind: 'completed',
        summary: 'workflow completed',
        data: summarise(e.workflowExecutionCompletedEventAttributes.result?.payloads, decoded),
      });
    } else if (e.workflowExecutionFailedEventAttributes) {
      push({
        kind: 'failed',
        summary: `workflow FAILED: ${failureText(e.workflowExecutionFailedEventAttributes.failure)}`,
      });
    } else if (e.workflowExecutionCanceledEventAttributes) {
      push({
        kind: 'cancelled',
        summary: 'workflow cancelled',
        data: summarise(e.workflowExecutionCanceledEventAttributes.details?.payloads, decoded),
      });
    } else if (e.workflowExecutionTerminatedEventAttributes) {
      const a = e.workflowExecutionTerminatedEventAttributes;
      push({
        kind: 'terminated',
        who: a.identity ?? undefined,
        summary: `workflow TERMINATED${a.reason ? `: ${a.reason}` : ''}`,
      });
    } else if (e.workflowExecutionTimedOutEventAttributes) {
      push({ kind: 'timed-out', summary: 'workflow TIMED OUT' });
    }
  }
  return out;
}

export function formatTimeline(entries: TimelineEntry[]): string[] {
  return entries.flatMap((t) => {
    const line =
      `${t.at}  #${String(t.eventId).padEnd(4)} ${t.kind.padEnd(16)} ` +
      `${t.summary}${t.who ? `  — by ${t.who}` : ''}`;
    return t.data === undefined ? [line] : [line, `${' '.repeat(48)}${t.data}`];
  });
}
