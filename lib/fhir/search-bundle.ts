/**
 * Parses and validates one FHIR search page. A page is all-or-nothing: any defect (invalid JSON,
 * a Bundle that is not a searchset, an entry of the wrong type, a resource without id or
 * meta.lastUpdated) rejects the whole page with MalformedVendorDataError, before anything is stored.
 */
import type { ResourceType } from '../domain.js';
import { MalformedVendorDataError } from '../errors/index.js';

export interface SearchPageResource {
  id: string;
  versionId: string;
  lastUpdated: string;
  resource: Record<string, unknown>;
}

export interface SearchPage {
  resources: SearchPageResource[];
  nextUrl: string | undefined;
  /** `Bundle.total` when the server gave one: the number of matches of the whole search, not this page. */
  total: number | undefined;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** FHIR `instant`: a full date-time with seconds and a zone. */
const FHIR_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export function parseSearchBundle(type: ResourceType, body: Buffer): SearchPage {
  let bundle: unknown;
  try {
    bundle = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MalformedVendorDataError(type, `body is not valid JSON (${body.byteLength} bytes)`);
  }
  if (!isObject(bundle) || bundle.resourceType !== 'Bundle')
    throw new MalformedVendorDataError(type, 'body is not a FHIR Bundle');
  if (bundle.type !== 'searchset') throw new MalformedVendorDataError(type, 'Bundle.type is not searchset');
  const entries = bundle.entry === undefined ? [] : bundle.entry;
  if (!Array.isArray(entries)) throw new MalformedVendorDataError(type, 'Bundle.entry is not an array');
  const resources: SearchPageResource[] = [];
  entries.forEach((entry, index) => {
    const resource = isObject(entry) ? entry.resource : undefined;
    if (!isObject(resource)) throw new MalformedVendorDataError(type, `entry ${index} has no resource`);
    // search.mode is optional in FHIR: an entry without it is a match, never silently dropped.
    const mode = isObject(entry.search) && typeof entry.search.mode === 'string' ? entry.search.mode : 'match';
    if (mode !== 'match') return; // includes and outcomes are not stored
    if (resource.resourceType !== type) throw new MalformedVendorDataError(type, `entry ${index} is not a ${type}`);
    const meta = isObject(resource.meta) ? resource.meta : {};
    if (typeof resource.id !== 'string' || !FHIR_ID.test(resource.id))
      throw new MalformedVendorDataError(type, `entry ${index} has no valid id`);
    if (
      typeof meta.lastUpdated !== 'string' ||
      !FHIR_INSTANT.test(meta.lastUpdated) ||
      Number.isNaN(Date.parse(meta.lastUpdated))
    ) {
      throw new MalformedVendorDataError(type, `entry ${index} has no valid meta.lastUpdated`);
    }
    // Vendors that omit versionId get lastUpdated as the version: still monotonic per record.
    const versionId =
      typeof meta.versionId === 'string' && meta.versionId.length > 0 ? meta.versionId : meta.lastUpdated;
    resources.push({ id: resource.id, versionId, lastUpdated: meta.lastUpdated, resource });
  });
  const links = Array.isArray(bundle.link) ? bundle.link : [];
  const next = links.find((l) => isObject(l) && l.relation === 'next') as { url?: unknown } | undefined;
  if (next !== undefined && typeof next.url !== 'string')
    throw new MalformedVendorDataError(type, 'next link has no url');
  const total = typeof bundle.total === 'number' && Number.isInteger(bundle.total) ? bundle.total : undefined;
  return { resources, nextUrl: next?.url as string | undefined, total };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
