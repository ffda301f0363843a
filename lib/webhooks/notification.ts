/**
 * What a webhook delivery says changed, reduced to what may be stored and put in a workflow history:
 * an event type, the resource types named and how many entries there were — never resource ids or
 * content (an id-only notification still points at a patient). Two shapes are understood:
 *  - a FHIR subscription notification Bundle (R4 backport `history` / R5 `subscription-notification`):
 *    the first entry's SubscriptionStatus (or backport Parameters) gives the type (handshake,
 *    heartbeat, event-notification, …); the other entries and the notification events' `focus`
 *    references give the resource types;
 *  - plain JSON `{ "type": "...", "resourceTypes": ["Observation", …] }`.
 * Unknown resource types are counted, not kept: we sync only RESOURCE_TYPES.
 */
import { isResourceType, type ResourceType } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';

export type NotificationKind = 'change' | 'handshake' | 'heartbeat';

export interface NotificationSummary {
  kind: NotificationKind;
  eventType: string;
  /** Known types named by the delivery, sorted; empty means "something changed, unspecified". */
  resourceTypes: ResourceType[];
  /** Types named that we do not sync. */
  unknownTypes: number;
  entryCount: number;
}

const EVENT_TYPE = /^[A-Za-z0-9._:/-]{1,100}$/;
const REFERENCE = /(?:^|\/)([A-Z][A-Za-z]{1,63})\/[A-Za-z0-9.-]{1,64}(?:\/_history\/[A-Za-z0-9.-]{1,64})?$/;
const MAX_NAMED_TYPES = 1000;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function typeOfReference(ref: unknown): string | undefined {
  const s = str(ref);
  return s === undefined ? undefined : REFERENCE.exec(s.split('?')[0]!)?.[1];
}

/** `type` of a SubscriptionStatus, or the `type` parameter of an R4-backport Parameters resource. */
function statusType(status: Json): string | undefined {
  if (status['resourceType'] === 'SubscriptionStatus') return str(status['type']);
  const params = Array.isArray(status['parameter']) ? (status['parameter'] as unknown[]) : [];
  for (const p of params) if (isObject(p) && p['name'] === 'type') return str(p['valueCode']);
  return undefined;
}

/**
 * Focus references of the notification events (R5 `notificationEvent[].focus`, backport
 * `notification-event.focus` parts).
 */
function focusReferences(status: Json): unknown[] {
  const refs: unknown[] = [];
  for (const e of Array.isArray(status['notificationEvent']) ? (status['notificationEvent'] as unknown[]) : []) {
    if (isObject(e) && isObject(e['focus'])) refs.push(e['focus']['reference']);
  }
  for (const p of Array.isArray(status['parameter']) ? (status['parameter'] as unknown[]) : []) {
    if (!isObject(p) || p['name'] !== 'notification-event') continue;
    for (const part of Array.isArray(p['part']) ? (p['part'] as unknown[]) : []) {
      if (isObject(part) && part['name'] === 'focus' && isObject(part['valueReference']))
        refs.push(part['valueReference']['reference']);
    }
  }
  return refs;
}

function kindOf(eventType: string): NotificationKind {
  return eventType === 'handshake' ? 'handshake' : eventType === 'heartbeat' ? 'heartbeat' : 'change';
}

function summarise(
  eventType: string | undefined,
  named: Array<string | undefined>,
  entryCount: number,
): NotificationSummary {
  const known = new Set<ResourceType>();
  const unknown = new Set<string>();
  for (const t of named.slice(0, MAX_NAMED_TYPES)) {
    if (t === undefined) continue;
    if (isResourceType(t)) known.add(t);
    else unknown.add(t);
  }
  const type = eventType !== undefined && EVENT_TYPE.test(eventType) ? eventType : 'unspecified';
  return {
    kind: kindOf(type),
    eventType: type,
    resourceTypes: [...known].sort(),
    unknownTypes: unknown.size,
    entryCount,
  };
}

/** Throws InvalidArgumentError (naming no content) when the body is not a notification we understand. */
export function summariseNotification(body: Buffer | string): NotificationSummary {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    throw new InvalidArgumentError('webhook body', 'is not JSON');
  }
  if (!isObject(parsed)) throw new InvalidArgumentError('webhook body', 'is not a JSON object');
  if (parsed['resourceType'] === 'Bundle') {
    const entries = (Array.isArray(parsed['entry']) ? (parsed['entry'] as unknown[]) : []).filter(isObject);
    const status = entries
      .map((e) => e['resource'])
      .find(
        (r): r is Json =>
          isObject(r) && (r['resourceType'] === 'SubscriptionStatus' || r['resourceType'] === 'Parameters'),
      );
    if (!status) throw new InvalidArgumentError('webhook body', 'is a Bundle without a SubscriptionStatus');
    const changed = entries.filter((e) => e['resource'] !== status);
    const named = [
      ...changed.map(
        (e) =>
          (isObject(e['resource']) ? str(e['resource']['resourceType']) : undefined) ??
          typeOfReference(e['fullUrl']) ??
          (isObject(e['request']) ? typeOfReference(e['request']['url']) : undefined),
      ),
      ...focusReferences(status).map(typeOfReference),
    ];
    return summarise(statusType(status), named, changed.length);
  }
  const types = parsed['resourceTypes'];
  if (types !== undefined && !(Array.isArray(types) && types.every((t) => typeof t === 'string'))) {
    throw new InvalidArgumentError('webhook body', 'resourceTypes must be an array of strings');
  }
  const named = (types as string[] | undefined) ?? [];
  return summarise(str(parsed['type']), named, named.length);
}
