/**
 * Test helpers for the sandbox's Bulk Data export and consistency behaviours (real HTTP, global fetch):
 * kick off, poll to the manifest, set misbehaviour, read what the sandbox observed, and the admin
 * switches for deletions, ties, late-committing transactions and the search cap/cache/page size.
 */
import type { ResourceType } from '../lib/domain.js';
import type { BulkBehaviourPatch, BulkLog } from './bulk-behaviour.js';
import type { ExportLevel } from './read-paths.js';
import { adminFetch, adminJson, type SandboxRef } from './test-client.js';

type Ref = SandboxRef & { fhirBaseUrl: string };

export interface BulkManifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: Array<{ type: string; url: string; count: number }>;
  error: Array<{ type: string; url: string }>;
  deleted?: Array<{ type: string; url: string }>;
}

export async function kickOff(
  sb: Ref,
  token: string,
  level: ExportLevel,
  params: Record<string, string>,
  groupId?: string,
): Promise<{ status: number; statusUrl: string; body: unknown }> {
  const path = level === 'system' ? '$export' : level === 'patient' ? 'Patient/$export' : `Group/${groupId}/$export`;
  const qs = new URLSearchParams(params).toString();
  const res = await fetch(`${sb.fhirBaseUrl}/${path}${qs ? `?${qs}` : ''}`, {
    headers: { authorization: `Bearer ${token}`, prefer: 'respond-async', accept: 'application/fhir+json' },
  });
  const text = await res.text();
  return {
    status: res.status,
    statusUrl: res.headers.get('content-location') ?? '',
    body: text ? (JSON.parse(text) as unknown) : undefined,
  };
}

/** Polls (honouring Retry-After in seconds) until the manifest; gives up after `maxPolls`. */
export async function pollUntilDone(
  _sb: Ref,
  statusUrl: string,
  token: string,
  maxPolls = 50,
): Promise<{ manifest: BulkManifest; polls: Array<{ status: number; progress: string | null }> }> {
  const polls: Array<{ status: number; progress: string | null }> = [];
  for (let i = 0; i < maxPolls; i++) {
    const res = await fetch(statusUrl, { headers: { authorization: `Bearer ${token}` } });
    polls.push({ status: res.status, progress: res.headers.get('x-progress') });
    if (res.status === 200) return { manifest: (await res.json()) as BulkManifest, polls };
    await res.arrayBuffer();
    if (res.status !== 202) throw new Error(`bulk status answered ${res.status}`);
    const wait = Number(res.headers.get('retry-after') ?? '0');
    await new Promise((r) => setTimeout(r, Number.isFinite(wait) ? wait * 1000 : 1000));
  }
  throw new Error('bulk export did not complete');
}

/** Partial update of the export misbehaviour; null resets it to the defaults. */
export async function setBulkBehaviour(sb: SandboxRef, patch: BulkBehaviourPatch | null): Promise<void> {
  const res = await adminFetch(sb, '/admin/bulk/behaviour', {
    method: patch === null ? 'DELETE' : 'PUT',
    ...(patch === null ? {} : { body: patch }),
  });
  if (!res.ok) throw new Error(`sandbox admin bulk behaviour answered ${res.status}`);
}

export function bulkLog(sb: SandboxRef): Promise<BulkLog & { otherOrigin: string }> {
  return adminJson(sb, '/admin/bulk/log');
}

type Summary = Array<{ id: string; versionId: string; lastUpdated: string }>;

export async function deleteRecords(
  sb: SandboxRef,
  resourceType: ResourceType,
  which: { count: number } | { ids: string[] },
): Promise<Summary> {
  return (await adminJson<{ deleted: Summary }>(sb, '/admin/records/delete', { resourceType, ...which })).deleted;
}

/** Modifies `count` records so that all share one exact lastUpdated. */
export async function modifyTied(sb: SandboxRef, resourceType: ResourceType, count: number): Promise<Summary> {
  return (await adminJson<{ modified: Summary }>(sb, '/admin/records/tie', { resourceType, count })).modified;
}

/** Begins a transaction stamped now and visible only at commit; returns its commit function. */
export async function beginTransaction(
  sb: SandboxRef,
  resourceType: ResourceType,
  count: number,
): Promise<{ id: string; startedAt: string; commit: () => Promise<Summary> }> {
  const tx = await adminJson<{ id: string; startedAt: string }>(sb, '/admin/transactions', { resourceType, count });
  return {
    ...tx,
    commit: async () =>
      (await adminJson<{ committed: Summary }>(sb, `/admin/transactions/${tx.id}/commit`, {})).committed,
  };
}

export function setSearchBehaviour(
  sb: SandboxRef,
  patch: { capResults?: number | null; cacheSeconds?: number | null; maxPageSize?: number; sortLastUpdated?: boolean },
): Promise<Record<string, unknown>> {
  return adminJson(sb, '/admin/search-behaviour', patch, 'PUT');
}
