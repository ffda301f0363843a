/**
 * What a FHIR server says it can do (its CapabilityStatement at `[base]/metadata`), reduced to the facts a read
 * strategy needs. A server that does not answer, or answers something unreadable, is treated as offering
 * nothing optional: no `_sort`, no type history — the conservative reading, never a failed sync.
 */
export interface ServerCapabilities {
  /** The statement was read; false: every fact below is the conservative default. */
  known: boolean;
  /** Types whose searches accept `_sort` (listed as a search parameter of the type or of the whole server). */
  sortable: string[];
  /** Types offering the `history-type` interaction (`[type]/_history?_since=` shows deletions). */
  typeHistory: string[];
  /** Types whose searches list `_lastUpdated` (absent list: unknown, treated as supported). */
  lastUpdated: string[] | null;
}

export const UNKNOWN_CAPABILITIES: ServerCapabilities = {
  known: false,
  sortable: [],
  typeHistory: [],
  lastUpdated: null,
};

interface Named {
  name?: unknown;
  code?: unknown;
}

export function parseCapabilityStatement(body: Buffer): ServerCapabilities {
  let statement: unknown;
  try {
    statement = JSON.parse(body.toString('utf8'));
  } catch {
    return UNKNOWN_CAPABILITIES;
  }
  if (!isObject(statement) || statement.resourceType !== 'CapabilityStatement') return UNKNOWN_CAPABILITIES;
  const rest = (Array.isArray(statement.rest) ? statement.rest : []).find(
    (r): r is Record<string, unknown> => isObject(r) && (r.mode === undefined || r.mode === 'server'),
  );
  if (!rest) return UNKNOWN_CAPABILITIES;
  const serverSort = names(rest.searchParam).includes('_sort');
  const sortable: string[] = [];
  const typeHistory: string[] = [];
  const lastUpdated: string[] = [];
  let anyParams = false;
  for (const resource of Array.isArray(rest.resource) ? rest.resource : []) {
    if (!isObject(resource) || typeof resource.type !== 'string') continue;
    const params = names(resource.searchParam);
    if (params.length > 0) anyParams = true;
    if (serverSort || params.includes('_sort')) sortable.push(resource.type);
    if (params.includes('_lastUpdated')) lastUpdated.push(resource.type);
    const interactions = (Array.isArray(resource.interaction) ? resource.interaction : []).map((i: Named) => i.code);
    if (interactions.includes('history-type')) typeHistory.push(resource.type);
  }
  return { known: true, sortable, typeHistory, lastUpdated: anyParams ? lastUpdated : null };
}

function names(list: unknown): string[] {
  return (Array.isArray(list) ? list : []).flatMap((p: Named) => (typeof p?.name === 'string' ? [p.name] : []));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
