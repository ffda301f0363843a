/**
 * How each personality lets a client read a population, as its vendor documents it (mirrored from the
 * product's lib/vendors/profiles `bulk` and `paging` facts as the sandbox's own data: the sandbox may
 * not import the product). Where a vendor publishes nothing the value is a plausible, stated choice.
 */
import type { PersonalityId } from './personalities.js';

export type ExportLevel = 'system' | 'patient' | 'group';

export interface BulkOffer {
  /** Bulk Data IG version the vendor implements. */
  version: '1.0.1' | '2.0.0';
  levels: readonly ExportLevel[];
  /** `_since` honoured; otherwise a kick-off with `_since` is refused 400. */
  incremental: boolean;
  /** How long output files stay downloadable after the manifest is ready. */
  fileTtlSeconds: number;
  /** Status code a download of an expired file gets. */
  expiredStatus: 404 | 410;
  /** Largest number of resources in one output file (more → several files per type). */
  resourcesPerFile: number;
}

export interface ReadPaths {
  /** null: no Bulk Data. */
  bulk: BulkOffer | null;
  /**
   * Searches without `patient` (or `_id`): 'all' types allowed; 'patient-only' only Patient may be
   * listed; 'none' every search needs `patient` or `_id` (Patient too).
   */
  systemSearch: 'all' | 'patient-only' | 'none';
  /** `_sort=_lastUpdated` accepted (refused 400 otherwise). */
  sortLastUpdated: boolean;
  /** Type-level `_history` (with `_since`) offered. */
  history: boolean;
  /** Largest page: a larger `_count` is clamped to it. */
  maxPageSize: number;
  /** Id of the Group whose members are the practice's patients (the roster). */
  groupId: string;
}

const DAY = 86_400;

export const READ_PATHS: Readonly<Record<PersonalityId, ReadPaths>> = {
  // Permissive: a generic FHIR server with every read path.
  standard: {
    bulk: {
      version: '2.0.0',
      levels: ['system', 'patient', 'group'],
      incremental: true,
      fileTtlSeconds: 3600,
      expiredStatus: 404,
      resourcesPerFile: 100_000,
    },
    systemSearch: 'all',
    sortLastUpdated: true,
    history: true,
    maxPageSize: 5000,
    groupId: 'all-patients',
  },
  // fhir.epic.com Bulk FHIR: Group $export only, not incremental. Clinical searches need `patient`
  // (Epic answers 400 otherwise); no _sort.
  epic: {
    bulk: {
      version: '1.0.1',
      levels: ['group'],
      incremental: false,
      fileTtlSeconds: DAY,
      expiredStatus: 404,
      resourcesPerFile: 100_000,
    },
    systemSearch: 'none',
    sortLastUpdated: false,
    history: false,
    maxPageSize: 1000,
    groupId: 'eIscQb2HmqkT.aPxBKDR1mIj3721CpVk1suC7rlu3yX83',
  },
  // Oracle Health Bulk Data (Millennium): Group and Patient, _since, files expire after 30 days.
  // Searches need `patient` (or `_id`); small pages.
  'oracle-health': {
    bulk: {
      version: '1.0.1',
      levels: ['group', 'patient'],
      incremental: true,
      fileTtlSeconds: 30 * DAY,
      expiredStatus: 404,
      resourcesPerFile: 100_000,
    },
    systemSearch: 'none',
    sortLastUpdated: false,
    history: false,
    maxPageSize: 200,
    groupId: '11ec-d16a-c763b73e-98e8-a31715e6a2bf',
  },
  // athenahealth: Bulk v2 Group export with _since (backfills, by approval).
  athenahealth: {
    bulk: {
      version: '2.0.0',
      levels: ['group'],
      incremental: true,
      fileTtlSeconds: DAY,
      expiredStatus: 410,
      resourcesPerFile: 50_000,
    },
    systemSearch: 'patient-only',
    sortLastUpdated: false,
    history: false,
    maxPageSize: 1000,
    groupId: 'a-1.Practice-195900',
  },
  // MEDITECH Expanse: no Bulk Data found; patient-scoped US Core searches.
  meditech: {
    bulk: null,
    systemSearch: 'patient-only',
    sortLastUpdated: false,
    history: false,
    maxPageSize: 500,
    groupId: 'practice-roster',
  },
  // eClinicalWorks: Group $export, not incremental (third-party reports).
  eclinicalworks: {
    bulk: {
      version: '1.0.1',
      levels: ['group'],
      incremental: false,
      fileTtlSeconds: DAY,
      expiredStatus: 404,
      resourcesPerFile: 100_000,
    },
    systemSearch: 'patient-only',
    sortLastUpdated: false,
    history: false,
    maxPageSize: 1000,
    groupId: 'SBXPRAC-roster',
  },
  // NextGen: Group $export exists (details unverified), not incremental.
  nextgen: {
    bulk: {
      version: '1.0.1',
      levels: ['group'],
      incremental: false,
      fileTtlSeconds: DAY,
      expiredStatus: 404,
      resourcesPerFile: 100_000,
    },
    systemSearch: 'patient-only',
    sortLastUpdated: false,
    history: false,
    maxPageSize: 1000,
    groupId: 'nge-site-roster',
  },
};
