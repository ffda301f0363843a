/**
 * Which read strategy an integration uses and with what settings: the integration's own choice, else its
 * vendor profile's default. The nightly sync's plan names the result, so the workflow runs whichever it is.
 */
import type { ReadOptions, ReadStrategy, ResourceType } from '../domain.js';
import type { ServerCapabilities } from '../fhir/capabilities.js';
import type { Integration } from '../integrations/repository.js';
import { profileFor } from '../vendors/profiles/index.js';
import type { ReadSupport } from '../vendors/profiles/types.js';

/** Types outside every patient compartment (FHIR R4 CompartmentDefinition patient) among the stored ones. */
export const NOT_PATIENT_SCOPED: ReadonlySet<string> = new Set([
  'Practitioner',
  'PractitionerRole',
  'Organization',
  'Location',
  'Medication',
]);

export interface EffectiveRead {
  strategy: ReadStrategy;
  /** Seconds incremental reads reach back before their checkpoint. */
  overlapSeconds: number;
  options: ReadOptions;
  support: ReadSupport;
}

export function readStrategyOf(
  integration: Pick<Integration, 'vendor' | 'readStrategy' | 'readOptions'>,
): EffectiveRead {
  const support = profileFor(integration.vendor).reads.value;
  return {
    strategy: integration.readStrategy ?? support.defaultStrategy,
    overlapSeconds: integration.readOptions.overlapSeconds ?? support.overlapSeconds,
    options: integration.readOptions,
    support,
  };
}

/** How one sync run reads: the plan's part that the workflow branches on (identifiers and numbers only). */
export interface ReadPlan {
  strategy: ReadStrategy;
  /** Incremental reads start this many seconds before each checkpoint, and deduplicate by version. */
  overlapSeconds: number;
  /** `_lastUpdated` is honoured on searches (else every run reads everything the strategy reaches). */
  lastUpdatedSearch: boolean;
  /** Types whose searches the server may sort by `_lastUpdated` (its CapabilityStatement says so). */
  sortable: ResourceType[];
  /**
   * Types whose deletions `[type]/_history?_since=` shows, each since its checkpoint as it was when the run planned
   * (bulk: read after the export, which has moved the checkpoints by then).
   */
  typeHistory: Array<{ resourceType: ResourceType; since: string }>;
  /** bulk: the export's level and settings. */
  bulk?: { level: 'system' | 'group' | 'patient'; groupId?: string; typeFilter?: string[]; incremental: boolean };
  /** Types this run does not read, each with its stable reason code (e.g. a scope the vendor did not grant). */
  skip?: Array<{ resourceType: ResourceType; reason: string; detail: string }>;
  /**
   * patient: roster positions per activity. A rate-limited endpoint's queue paces activities, not requests, so
   * there one activity reads one patient (a request per type, more only when a patient's results span pages).
   */
  patientsPerBatch?: number;
  /** patient: where the roster comes from (a Group, or a Patient search). */
  roster?: { groupId?: string; search?: string };
}

export interface ReadPlanInput {
  integration: Pick<Integration, 'vendor' | 'readStrategy' | 'readOptions'>;
  capabilities: ServerCapabilities;
  types: ReadonlyArray<{ resourceType: ResourceType; since: string | null }>;
  /** Every type's stored checkpoint, also on a full run (history reaches back to it for deletions). */
  checkpoints: ReadonlyMap<string, string>;
}

export function planRead(input: ReadPlanInput): ReadPlan {
  const read = readStrategyOf(input.integration);
  const caps = input.capabilities;
  const lastUpdatedSearch = read.support.lastUpdatedSearch || (caps.known && caps.lastUpdated !== null);
  const plan: ReadPlan = {
    strategy: read.strategy,
    overlapSeconds: read.overlapSeconds,
    lastUpdatedSearch,
    sortable: input.types.map((t) => t.resourceType).filter((t) => caps.sortable.includes(t)),
    // Searches (system-wide or per patient) never show a deletion, and an export lists its own in `deleted[]` only
    // where the server sends one (HAPI never does): where the server offers the type's history, the run reads its
    // deletions there too. A deletion learned twice (`deleted[]` and history) is removed, and counted, once.
    typeHistory: input.types.flatMap((t) => historySince(input, read.strategy, t.resourceType)),
  };
  if (read.strategy === 'bulk') {
    const levels = profileFor(input.integration.vendor).bulk.value;
    plan.bulk = {
      level: read.options.bulkLevel ?? levels.levels[0] ?? 'system',
      ...(read.options.groupId ? { groupId: read.options.groupId } : {}),
      ...(read.options.typeFilter?.length ? { typeFilter: read.options.typeFilter } : {}),
      incremental: levels.incremental,
    };
  }
  if (read.strategy === 'patient') {
    // Directory resources belong to no patient's compartment: a `patient=` search of them is meaningless (and
    // refused), so the patient strategy leaves them out, named in the report.
    const outside = input.types.filter((t) => NOT_PATIENT_SCOPED.has(t.resourceType));
    if (outside.length > 0) {
      plan.skip = outside.map((t) => ({
        resourceType: t.resourceType,
        reason: 'TYPE_NOT_PATIENT_SCOPED',
        detail: `${t.resourceType} is in no patient's compartment; read it with the search or bulk strategy`,
      }));
    }
    plan.roster = read.options.groupId
      ? { groupId: read.options.groupId }
      : { search: read.options.rosterSearch ?? '_count=500' };
  }
  return plan;
}

function historySince(
  input: ReadPlanInput,
  strategy: ReadStrategy,
  resourceType: ResourceType,
): ReadPlan['typeHistory'] {
  const since = input.checkpoints.get(resourceType);
  if (!since || !input.capabilities.typeHistory.includes(resourceType)) return [];
  // The patient strategy does not read directory types at all (they are skipped), so not their deletions either.
  return strategy === 'patient' && NOT_PATIENT_SCOPED.has(resourceType) ? [] : [{ resourceType, since }];
}
