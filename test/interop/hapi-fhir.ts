/**
 * Plain-fetch FHIR helpers for the interop tests: JSON requests, transactions, every page of a
 * search or history, and Bulk Data $export. No client library, so the tests see the wire as it is.
 */

export interface FhirResource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string };
  [field: string]: unknown;
}

export interface BundleEntry {
  fullUrl?: string;
  resource?: FhirResource;
  request?: { method: string; url: string; ifMatch?: string };
  response?: { status: string; location?: string; etag?: string; lastModified?: string };
}

export interface Bundle extends FhirResource {
  resourceType: 'Bundle';
  type: string;
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: BundleEntry[];
}

/** One stored version of a resource, as a test asserts on it. */
export interface ResourceRef {
  type: string;
  id: string;
  versionId: string;
}

const FHIR_JSON = 'application/fhir+json';

export class FhirHttpError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly body: string,
  ) {
    super(`FHIR ${status} from ${url}: ${body.slice(0, 500)}`);
  }
}

/** A FHIR JSON request; throws FhirHttpError on a non-2xx answer. `fresh` sends Cache-Control: no-cache. */
export async function fhirJson<T = FhirResource>(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; fresh?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: FHIR_JSON, ...init.headers };
  if (init.body !== undefined) headers['content-type'] = FHIR_JSON;
  if (init.fresh) headers['cache-control'] = 'no-cache';
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  if (!res.ok) throw new FhirHttpError(res.status, url, text);
  return (text ? JSON.parse(text) : {}) as T;
}

/** Posts a transaction (or batch) bundle and returns the response bundle. */
export function postBundle(baseUrl: string, type: 'transaction' | 'batch', entry: BundleEntry[]): Promise<Bundle> {
  return fhirJson<Bundle>(baseUrl, { method: 'POST', body: { resourceType: 'Bundle', type, entry } });
}

/** `Patient/12/_history/3` → { type: 'Patient', id: '12', versionId: '3' }. */
export function refFromLocation(location: string): ResourceRef {
  const m = /(?:^|\/)([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\/([^/?]+)/.exec(location);
  if (!m) throw new Error(`not a versioned location: ${location}`);
  return { type: m[1]!, id: m[2]!, versionId: m[3]! };
}

/** Every page from `url` on, following `next` links; the first page's Bundle.total comes along. */
export async function allPages(
  url: string,
  options: { fresh?: boolean; maxPages?: number } = {},
): Promise<{ entries: BundleEntry[]; pages: number; total: number | undefined }> {
  const entries: BundleEntry[] = [];
  let next: string | undefined = url;
  let pages = 0;
  let total: number | undefined;
  while (next) {
    if (pages >= (options.maxPages ?? 1_000)) throw new Error(`more than ${pages} pages from ${url}`);
    const page: Bundle = await fhirJson<Bundle>(next, { fresh: options.fresh });
    if (pages === 0) total = page.total;
    pages += 1;
    entries.push(...(page.entry ?? []));
    next = page.link?.find((l) => l.relation === 'next')?.url;
  }
  return { entries, pages, total };
}

export interface HistoryEntry {
  type: string;
  id: string;
  versionId: string;
  method: string;
  /** Absent for a delete. */
  resource: FhirResource | undefined;
}

/** Type-level `_history` (every page), newest first as the server sends it; `since` is an instant. */
export async function typeHistory(baseUrl: string, type: string, since?: string, count = 100): Promise<HistoryEntry[]> {
  const params = new URLSearchParams({ _count: String(count) });
  if (since) params.set('_since', since);
  const { entries } = await allPages(`${baseUrl}/${type}/_history?${params.toString()}`, { fresh: true });
  return entries.map((e) => {
    const ref = refFromLocation(e.request?.url ?? e.fullUrl ?? '');
    return { ...ref, method: e.request?.method ?? 'UNKNOWN', resource: e.resource };
  });
}

export type ExportLevel = { kind: 'system' } | { kind: 'patient' } | { kind: 'group'; groupId: string };

export interface ExportResult {
  transactionTime: string;
  /** NDJSON files as listed in the completion manifest. */
  output: { type: string; url: string }[];
  /** Every exported resource, by type, read from those files. */
  resources: Record<string, FhirResource[]>;
  /** Seconds from kick-off to a complete manifest. */
  seconds: number;
}

/** Kicks off $export, polls the status URL until the manifest is there, then reads every file. */
export async function bulkExport(
  baseUrl: string,
  level: ExportLevel,
  options: { types?: string[]; since?: string; timeoutMs?: number } = {},
): Promise<ExportResult> {
  const params = new URLSearchParams();
  if (options.types) params.set('_type', options.types.join(','));
  if (options.since) params.set('_since', options.since);
  const base =
    level.kind === 'system'
      ? baseUrl
      : level.kind === 'patient'
        ? `${baseUrl}/Patient`
        : `${baseUrl}/Group/${level.groupId}`;
  const query = params.toString();
  const kickoff = `${base}/$export${query ? `?${query}` : ''}`;
  const started = Date.now();
  const res = await fetch(kickoff, { headers: { accept: FHIR_JSON, prefer: 'respond-async' } });
  const statusUrl = res.headers.get('content-location');
  await res.body?.cancel();
  if (res.status !== 202 || !statusUrl) throw new FhirHttpError(res.status, kickoff, 'no 202 with Content-Location');
  const deadline = started + (options.timeoutMs ?? 120_000);
  for (;;) {
    const poll = await fetch(statusUrl, { headers: { accept: 'application/json' } });
    if (poll.status === 200) {
      const manifest = (await poll.json()) as { transactionTime: string; output: { type: string; url: string }[] };
      const resources: Record<string, FhirResource[]> = {};
      for (const file of manifest.output) {
        const body = await fetch(file.url, { headers: { accept: 'application/fhir+ndjson' } });
        if (!body.ok) throw new FhirHttpError(body.status, file.url, await body.text());
        const lines = (await body.text()).split('\n').filter((l) => l.trim() !== '');
        (resources[file.type] ??= []).push(...lines.map((l) => JSON.parse(l) as FhirResource));
      }
      return { ...manifest, resources, seconds: (Date.now() - started) / 1000 };
    }
    const text = await poll.text();
    if (poll.status !== 202) throw new FhirHttpError(poll.status, statusUrl, text);
    if (Date.now() > deadline) throw new Error(`$export not complete after ${options.timeoutMs ?? 120_000} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
