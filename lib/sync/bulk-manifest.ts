/**
 * The Bulk Data IG's shapes on our side: the kick-off URL for an export level, the completed status answer
 * (the manifest) validated before anything is downloaded, and the vendor's progress text made safe to show.
 * A manifest that is not what the IG describes, or that points a file anywhere but the vendor's origin or
 * an allowed file host, fails the export non-retryably: nothing it lists is fetched.
 */
import { BulkExportError } from '../errors/index.js';
import { fileOrigin } from '../vendors/bulk-hosts.js';

export type BulkLevel = 'system' | 'group' | 'patient';

export interface BulkFileRef {
  /** The manifest's `type`: a resource type for output files, OperationOutcome / Bundle for the others. */
  type: string;
  url: string;
  /** Resources (lines) in the file when the server says; null when it does not. */
  count: number | null;
}

export interface BulkManifest {
  transactionTime: string;
  requiresAccessToken: boolean;
  output: BulkFileRef[];
  error: BulkFileRef[];
  deleted: BulkFileRef[];
}

export interface KickoffRequest {
  level: BulkLevel;
  groupId?: string;
  types: readonly string[];
  since: string | null;
  typeFilter?: readonly string[];
}

const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;
const FHIR_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const TYPE_FILTER = /^[A-Z][A-Za-z]{1,63}\?\S{1,1000}$/;

/** `[base]/$export`, `[base]/Group/[id]/$export` or `[base]/Patient/$export`, with `_type`, `_since`, `_typeFilter`. */
export function kickoffUrl(baseUrl: string, req: KickoffRequest): URL {
  const base = baseUrl.replace(/\/$/, '');
  let path: string;
  switch (req.level) {
    case 'system':
      path = '$export';
      break;
    case 'patient':
      path = 'Patient/$export';
      break;
    case 'group':
      if (!req.groupId || !FHIR_ID.test(req.groupId))
        throw new BulkExportError('BULK_KICKOFF_REFUSED', 'kick-off', 'a group export needs a valid Group id');
      path = `Group/${req.groupId}/$export`;
      break;
    default: {
      const never: never = req.level;
      throw new BulkExportError('BULK_KICKOFF_REFUSED', 'kick-off', `unknown export level ${String(never)}`);
    }
  }
  const url = new URL(`${base}/${path}`);
  if (req.types.length > 0) url.searchParams.set('_type', req.types.join(','));
  if (req.since) url.searchParams.set('_since', req.since);
  for (const filter of req.typeFilter ?? []) {
    if (!TYPE_FILTER.test(filter))
      throw new BulkExportError('BULK_KICKOFF_REFUSED', 'kick-off', 'a _typeFilter must read Type?query');
    url.searchParams.append('_typeFilter', filter);
  }
  return url;
}

function invalid(detail: string): BulkExportError {
  return new BulkExportError('BULK_MANIFEST_INVALID', 'manifest', detail);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fileRefs(
  manifest: Record<string, unknown>,
  key: 'output' | 'error' | 'deleted',
  access: { baseUrl: string; fileHosts: readonly string[] },
): BulkFileRef[] {
  const list = manifest[key] ?? [];
  if (!Array.isArray(list)) throw invalid(`${key} is not an array`);
  return list.map((entry, index) => {
    if (!isObject(entry) || typeof entry.url !== 'string' || typeof entry.type !== 'string')
      throw invalid(`${key}[${index}] has no type and url`);
    let url: URL;
    try {
      url = new URL(entry.url);
    } catch {
      throw invalid(`${key}[${index}].url is not an absolute URL`);
    }
    if (fileOrigin(url, access.baseUrl, access.fileHosts) === 'refused') {
      throw new BulkExportError(
        'BULK_HOST_REFUSED',
        'manifest',
        `${key}[${index}] is on ${url.host}, neither the vendor's origin nor an allowed file host`,
      );
    }
    const count = entry.count === undefined ? null : entry.count;
    if (count !== null && (typeof count !== 'number' || !Number.isInteger(count) || count < 0))
      throw invalid(`${key}[${index}].count is not a non-negative integer`);
    return { type: entry.type.replace(/[^A-Za-z]/g, '').slice(0, 64), url: url.toString(), count };
  });
}

/** The completed status answer's body, checked against the IG and the integration's allowed hosts. */
export function parseManifest(body: Buffer, access: { baseUrl: string; fileHosts: readonly string[] }): BulkManifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid(`the completed status answer is not JSON (${body.byteLength} bytes)`);
  }
  if (!isObject(parsed)) throw invalid('the completed status answer is not a JSON object');
  const time = parsed.transactionTime;
  if (typeof time !== 'string' || !FHIR_INSTANT.test(time) || Number.isNaN(Date.parse(time)))
    throw invalid('transactionTime is not a FHIR instant');
  // A paged manifest (IG 2.0 `link` next) would list only part of the files: refuse rather than miss some.
  if (Array.isArray(parsed.link) && parsed.link.some((l) => isObject(l) && l.relation === 'next'))
    throw invalid('the manifest is paged (link next), which this client does not follow');
  const requires = parsed.requiresAccessToken;
  if (requires !== undefined && typeof requires !== 'boolean') throw invalid('requiresAccessToken is not a boolean');
  return {
    transactionTime: new Date(Date.parse(time)).toISOString(),
    // Absent means the IG's safe reading: the files are protected like the API.
    requiresAccessToken: requires ?? true,
    output: fileRefs(parsed, 'output', access),
    error: fileRefs(parsed, 'error', access),
    deleted: fileRefs(parsed, 'deleted', access),
  };
}

/** X-Progress is free vendor text that reaches a query answer: letters, digits and a little punctuation, capped. */
export function progressText(header: string | null): string | null {
  if (!header) return null;
  const text = header
    .replace(/[^A-Za-z0-9 %.,:;()/-]/g, '')
    .trim()
    .slice(0, 80);
  return text.length > 0 ? text : null;
}
