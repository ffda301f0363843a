/**
 * One line of a Bulk Data file, read on our side. A line is taken or refused on its own: a refused
 * (malformed) line is counted by its number and never quoted, and the rest of the file goes on. Output
 * lines become resources to store; deleted-file lines (IG 2.0: Bundles of DELETE requests) become
 * deletions; error-file lines (OperationOutcomes) become issue codes — their text is never read.
 */
import type { FetchedResource } from './store-resources.js';

const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;
const FHIR_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const CODE = /^[a-z][a-z-]{0,63}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An output line as a resource of `type`, or undefined when it is malformed (not a JSON object, another
 * type, no valid id, a lastUpdated that is not an instant). A resource without meta.lastUpdated is stamped
 * with the export's transactionTime (it was current then), and without versionId gets its lastUpdated.
 */
export function parseOutputLine(text: string, type: string, transactionTime: string): FetchedResource | undefined {
  const resource = parseObject(text);
  if (!resource || resource.resourceType !== type) return undefined;
  if (typeof resource.id !== 'string' || !FHIR_ID.test(resource.id)) return undefined;
  const meta = isObject(resource.meta) ? resource.meta : {};
  let lastUpdated = transactionTime;
  if (meta.lastUpdated !== undefined) {
    if (typeof meta.lastUpdated !== 'string' || !FHIR_INSTANT.test(meta.lastUpdated)) return undefined;
    if (Number.isNaN(Date.parse(meta.lastUpdated))) return undefined;
    lastUpdated = meta.lastUpdated;
  }
  const versionId = typeof meta.versionId === 'string' && meta.versionId.length > 0 ? meta.versionId : lastUpdated;
  return { id: resource.id, versionId, lastUpdated, resource };
}

/**
 * A deleted-file line: a Bundle whose entries' requests are `DELETE Type/id` (relative or absolute URLs).
 * Undefined when the line is malformed.
 */
export function parseDeletedLine(text: string): Array<{ resourceType: string; id: string }> | undefined {
  const bundle = parseObject(text);
  if (!bundle || bundle.resourceType !== 'Bundle') return undefined;
  const entries = bundle.entry ?? [];
  if (!Array.isArray(entries)) return undefined;
  const out: Array<{ resourceType: string; id: string }> = [];
  for (const entry of entries) {
    const request = isObject(entry) && isObject(entry.request) ? entry.request : undefined;
    if (!request || request.method !== 'DELETE' || typeof request.url !== 'string') return undefined;
    const parts = request.url
      .split('?')[0]!
      .split('/')
      .filter((p) => p.length > 0);
    const [resourceType, id] = parts.slice(-2);
    if (!resourceType || !id || !/^[A-Z][A-Za-z]{1,63}$/.test(resourceType) || !FHIR_ID.test(id)) return undefined;
    out.push({ resourceType, id });
  }
  return out;
}

/** An error-file line's issue codes (FHIR codes only), or undefined when it is not an OperationOutcome. */
export function outcomeIssueCodes(text: string): string[] | undefined {
  const outcome = parseObject(text);
  if (!outcome || outcome.resourceType !== 'OperationOutcome' || !Array.isArray(outcome.issue)) return undefined;
  return outcome.issue.map((issue) => {
    const code = isObject(issue) ? issue.code : undefined;
    return typeof code === 'string' && CODE.test(code) ? code : 'unknown';
  });
}

/** Malformed line numbers kept per file: enough to find them, bounded in a workflow history. */
export const MALFORMED_LINES_KEPT = 100;

export interface MalformedLines {
  count: number;
  /** The first MALFORMED_LINES_KEPT line numbers (1-based). */
  lines: number[];
}

export function noteMalformed(m: MalformedLines, line: number): void {
  m.count += 1;
  if (m.lines.length < MALFORMED_LINES_KEPT) m.lines.push(line);
}
