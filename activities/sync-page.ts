/**
 * One sync page, end to end inside one activity: fetch through the vendor wrapper, validate,
 * minimise, encrypt, and upsert with its audit events in one transaction. Only counts and the next
 * cursor leave: clinical content never reaches Temporal.
 */
import { Context } from '@temporalio/activity';
import type { AuditEvent } from '../lib/audit/chain.js';
import { appendAuditEvents } from '../lib/audit/chain.js';
import { PolicyViolationError, ScopeNotGrantedError, VendorHttpError } from '../lib/errors/index.js';
import { purposePolicy } from '../lib/fhir/classification.js';
import { minimiseForPurpose, patientIdOf } from '../lib/fhir/minimise.js';
import { parseSearchBundle } from '../lib/fhir/search-bundle.js';
import { encryptRecord } from '../lib/crypto/envelope.js';
import type { EncryptedRecord } from '../lib/store/records.js';
import { upsertRecords } from '../lib/store/records.js';
import { withTransaction } from '../lib/store/pool.js';
import type { SyncActivityDeps } from './deps.js';
import { activityAuditContext } from './audit-context.js';
import type { SyncPageInput, SyncPageResult } from './types.js';

/** Pseudonyms per audit event: keeps each event's details well under the 8 KB cap. */
const PSEUDONYMS_PER_EVENT = 200;

export function createSyncPageActivities(deps: Pick<SyncActivityDeps, 'pool' | 'keyring' | 'vendors' | 'directory'>) {
  return {
    async syncPage(input: SyncPageInput): Promise<SyncPageResult> {
      const ctx = activityAuditContext();
      const integration = await deps.directory.integration(input.integrationId);
      if (integration.tenantId !== input.tenantId) {
        throw new PolicyViolationError(
          'tenant-isolation',
          `integration ${input.integrationId} does not belong to tenant ${input.tenantId}`,
        );
      }
      if (!integration.resourceTypes.includes(input.resourceType)) {
        throw new PolicyViolationError(
          'minimum-necessary',
          `${input.resourceType} is outside integration ${integration.id}'s policy`,
        );
      }
      if (!purposePolicy(integration.purpose).resourceTypes.includes(input.resourceType)) {
        throw new PolicyViolationError(
          'minimum-necessary',
          `${input.resourceType} is outside integration ${integration.id}'s purpose ${integration.purpose}`,
        );
      }
      const url = input.cursor ?? firstPageUrl(integration.baseUrl, input);
      Context.current().heartbeat({ phase: 'fetch' });
      const response = await deps.vendors
        .get(input.integrationId, url, { correlationId: ctx.correlationId, purpose: 'sync.page' })
        .catch((err: unknown) => {
          // A 403 on a type we asked for means the vendor no longer grants it: name the type, do not retry.
          if (err instanceof VendorHttpError && err.status === 403)
            throw new ScopeNotGrantedError(input.integrationId, input.resourceType);
          throw err;
        });
      const page = parseSearchBundle(input.resourceType, response.body);
      Context.current().heartbeat({ phase: 'encrypt', resources: page.resources.length });

      const dataKey = await deps.keyring.primaryDataKey(input.tenantId, ctx);
      const records: EncryptedRecord[] = [];
      const pseudonyms = new Set<string>();
      let maxLastUpdated: string | null = null;
      let dropped = 0;
      for (const item of page.resources) {
        const patientId = patientIdOf(input.resourceType, item.resource);
        const pseudonym = patientId ? await deps.keyring.pseudonymise(input.tenantId, patientId) : null;
        if (pseudonym) pseudonyms.add(pseudonym);
        const minimised = minimiseForPurpose(input.resourceType, item.resource, integration.purpose);
        dropped += minimised.dropped;
        const plaintext = Buffer.from(JSON.stringify(minimised.resource), 'utf8');
        const recordCtx = {
          tenantId: input.tenantId,
          integrationId: input.integrationId,
          resourceType: input.resourceType,
          resourceId: item.id,
        };
        records.push({
          resourceId: item.id,
          versionId: item.versionId,
          lastUpdated: item.lastUpdated,
          patientPseudonym: pseudonym,
          keyVersion: dataKey.version,
          ciphertext: encryptRecord(dataKey, recordCtx, plaintext),
        });
        if (maxLastUpdated === null || Date.parse(item.lastUpdated) > Date.parse(maxLastUpdated))
          maxLastUpdated = item.lastUpdated;
      }

      const counts = await withTransaction(deps.pool, async (client) => {
        const upserted = await upsertRecords(
          client,
          { tenantId: input.tenantId, integrationId: input.integrationId, resourceType: input.resourceType },
          records,
        );
        await appendAuditEvents(client, storedEvents(ctx, input, { ...upserted, dropped }, [...pseudonyms]));
        return upserted;
      });
      return { fetched: page.resources.length, ...counts, dropped, nextCursor: page.nextUrl ?? null, maxLastUpdated };
    },
  };
}

function firstPageUrl(baseUrl: string, input: SyncPageInput): string {
  const url = new URL(`${baseUrl.replace(/\/$/, '')}/${input.resourceType}`);
  url.searchParams.set('_count', String(input.pageSize));
  url.searchParams.set('_sort', '_lastUpdated');
  if (input.since) url.searchParams.set('_lastUpdated', `gt${input.since}`);
  return url.toString();
}

function storedEvents(
  ctx: { actor: string; correlationId: string },
  input: SyncPageInput,
  counts: { inserted: number; updated: number; unchanged: number; dropped: number },
  pseudonyms: string[],
): AuditEvent[] {
  const base = {
    ...ctx,
    action: 'records.stored',
    outcome: 'success' as const,
    tenantId: input.tenantId,
    integrationId: input.integrationId,
  };
  const events: AuditEvent[] = [];
  for (let i = 0; i === 0 || i < pseudonyms.length; i += PSEUDONYMS_PER_EVENT) {
    events.push({
      ...base,
      details: {
        resourceType: input.resourceType,
        ...(i === 0 ? counts : {}),
        patients: pseudonyms.slice(i, i + PSEUDONYMS_PER_EVENT),
      },
    });
  }
  return events;
}
