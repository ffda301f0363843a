/**
 * Deletions in a type's history (`[base]/[type]/_history?_since=`): entries whose request is a DELETE, or whose
 * response status is 410, name a deleted resource. Everything else in the history (creates, updates) the search
 * already read. Only identifiers and instants leave this parser.
 */
import { MalformedVendorDataError } from '../errors/index.js';

export interface HistoryDeletion {
  resourceId: string;
  /** The entry's `response.lastModified`, when the server gives it. */
  deletedAt: string | undefined;
}

export interface HistoryPage {
  deletions: HistoryDeletion[];
  nextUrl: string | undefined;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function parseHistoryDeletions(type: string, body: Buffer): HistoryPage {
  let bundle: unknown;
  try {
    bundle = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MalformedVendorDataError(type, `history is not valid JSON (${body.byteLength} bytes)`);
  }
  if (!isObject(bundle) || bundle.resourceType !== 'Bundle' || bundle.type !== 'history')
    throw new MalformedVendorDataError(type, 'history is not a FHIR history Bundle');
  const deletions: HistoryDeletion[] = [];
  for (const entry of Array.isArray(bundle.entry) ? bundle.entry : []) {
    if (!isObject(entry)) continue;
    const request = isObject(entry.request) ? entry.request : {};
    const response = isObject(entry.response) ? entry.response : {};
    const gone = request.method === 'DELETE' || String(response.status ?? '').startsWith('410');
    if (!gone) continue;
    const id = idFrom(type, request.url) ?? idFrom(type, entry.fullUrl);
    if (!id) throw new MalformedVendorDataError(type, 'a deletion in the history names no resource id');
    const lastModified = typeof response.lastModified === 'string' ? response.lastModified : undefined;
    deletions.push({
      resourceId: id,
      deletedAt: lastModified && !Number.isNaN(Date.parse(lastModified)) ? lastModified : undefined,
    });
  }
  const links = Array.isArray(bundle.link) ? bundle.link : [];
  const next = links.find((l) => isObject(l) && l.relation === 'next') as { url?: unknown } | undefined;
  return { deletions, nextUrl: typeof next?.url === 'string' ? next.url : undefined };
}

/** `Observation/123`, `Observation/123/_history/4` or an absolute URL ending so: the id, when the type matches. */
function idFrom(type: string, url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  const parts = url.split('?')[0]!.split('/');
  const at = parts.lastIndexOf(type);
  const id = at >= 0 ? parts[at + 1] : undefined;
  return id && FHIR_ID.test(id) ? id : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
