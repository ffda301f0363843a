/**
 * Dataset layout, ids and synthetic patient identities. Nothing is stored: resource i of a type is a pure
 * function of (seed, type, i), so a million-resource dataset costs no memory.
 *
 * Identifying strings are deliberately synthetic and distinctive (syllable names with markers such as
 * "kov"/"rix"/"synth", SYN-MRN-########, 555-01##-####, "<n> Synthetic <Syllable> Way") so that leak
 * scans can look for them without false positives.
 */
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';
import { Rng, capitalise, hash32 } from './prng.js';

/** Base lastUpdated of index 0 of every type; index i is BASE_LAST_UPDATED_MS + i * 1000. */
export const BASE_LAST_UPDATED_MS = Date.UTC(2024, 0, 1, 0, 0, 0, 0);
export const BASE_STEP_MS = 1000;
export const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.SANDBOX.mrn';

/**
 * Each type's share of `size`. The original seven types share `size` exactly as they always did, so
 * every count (and page boundary) that tests and benchmarks knew stays what it was; each other US Core
 * type adds 1% of `size` on top (20% in all): a data set of size 700 holds 840 resources, 7 of each new type.
 */
const SHARES: Record<ResourceType, number> = {
  Patient: 0.1,
  Encounter: 0.2,
  Observation: 0.35,
  Condition: 0.1,
  MedicationRequest: 0.1,
  AllergyIntolerance: 0.075,
  Appointment: 0.075,
  CarePlan: 0.01,
  CareTeam: 0.01,
  Coverage: 0.01,
  Device: 0.01,
  DiagnosticReport: 0.01,
  DocumentReference: 0.01,
  Goal: 0.01,
  Immunization: 0.01,
  Location: 0.01,
  Medication: 0.01,
  MedicationDispense: 0.01,
  Organization: 0.01,
  Practitioner: 0.01,
  PractitionerRole: 0.01,
  Procedure: 0.01,
  Provenance: 0.01,
  QuestionnaireResponse: 0.01,
  RelatedPerson: 0.01,
  ServiceRequest: 0.01,
  Specimen: 0.01,
};
const ORIGINAL_TYPES = RESOURCE_TYPES.slice(0, 7);

const ID_PREFIX: Record<ResourceType, string> = {
  Patient: 'pt',
  Encounter: 'enc',
  Observation: 'obs',
  Condition: 'cnd',
  MedicationRequest: 'mrx',
  AllergyIntolerance: 'alg',
  Appointment: 'apt',
  CarePlan: 'cpl',
  CareTeam: 'ctm',
  Coverage: 'cov',
  Device: 'dev',
  DiagnosticReport: 'dxr',
  DocumentReference: 'doc',
  Goal: 'gol',
  Immunization: 'imm',
  Location: 'loc',
  Medication: 'med',
  MedicationDispense: 'mdp',
  Organization: 'org',
  Practitioner: 'prc',
  PractitionerRole: 'prr',
  Procedure: 'prd',
  Provenance: 'prv',
  QuestionnaireResponse: 'qrs',
  RelatedPerson: 'rlp',
  ServiceRequest: 'srq',
  Specimen: 'spc',
};
const TYPE_BY_PREFIX = new Map<string, ResourceType>(RESOURCE_TYPES.map((type) => [ID_PREFIX[type], type] as const));
const ID_PATTERN = /^([a-z]+)-([0-9a-z]{7,11})-([0-9a-z]{2})$/;
const INDEX_WIDTH = 7;

export type Layout = Record<ResourceType, number>;

/**
 * Per-type base counts: the original seven types' shares of `size` (at least one Patient, the rounding
 * remainder to Observation), plus 1% of `size` for each other type.
 */
export function computeLayout(size: number): Layout {
  const layout = {} as Layout;
  let sum = 0;
  for (const type of RESOURCE_TYPES) {
    layout[type] = Math.floor(size * SHARES[type]);
    if (ORIGINAL_TYPES.includes(type)) sum += layout[type];
  }
  if (layout.Patient < 1) {
    layout.Patient = 1;
    sum += 1;
  }
  if (sum < size) layout.Observation += size - sum;
  return layout;
}

export function typeIndex(type: ResourceType): number {
  return RESOURCE_TYPES.indexOf(type);
}

export function baseLastUpdatedMs(index: number): number {
  return BASE_LAST_UPDATED_MS + index * BASE_STEP_MS;
}

function idCheck(seed: number, type: ResourceType, index: number): string {
  return (hash32(seed, typeIndex(type), index, 0x1d) % 1296).toString(36).padStart(2, '0');
}

export function resourceId(seed: number, type: ResourceType, index: number): string {
  return `${ID_PREFIX[type]}-${index.toString(36).padStart(INDEX_WIDTH, '0')}-${idCheck(seed, type, index)}`;
}

/** Inverse of resourceId; undefined when the id is not one this dataset could have produced. */
export function parseResourceId(seed: number, id: string): { type: ResourceType; index: number } | undefined {
  const match = ID_PATTERN.exec(id);
  if (!match) return undefined;
  const type = TYPE_BY_PREFIX.get(match[1] as string);
  if (!type) return undefined;
  const index = parseInt(match[2] as string, 36);
  if (!Number.isSafeInteger(index) || resourceId(seed, type, index) !== id) return undefined;
  return { type, index };
}

// --- synthetic identities ----------------------------------------------------------------------------

const FAMILY_HEAD = [
  'zal',
  'vor',
  'quen',
  'thrax',
  'morv',
  'kel',
  'dras',
  'vix',
  'bron',
  'yul',
  'zen',
  'krat',
  'ulm',
  'fex',
  'gorv',
  'hask',
  'jorn',
  'lusk',
  'nyx',
  'plov',
  'qar',
  'rusk',
  'sorv',
  'tav',
  'vask',
  'wex',
  'xan',
  'yorv',
  'zim',
  'brex',
  'drov',
  'kavn',
] as const;
const FAMILY_MID = [
  'ik',
  'ov',
  'ar',
  'un',
  'el',
  'ax',
  'or',
  'im',
  'ul',
  'yr',
  'esh',
  'orn',
  'ith',
  'ast',
  'umb',
  'ekk',
] as const;
const FAMILY_MARK = ['kov', 'rix', 'synth', 'vane', 'dorf', 'strom', 'wick', 'zaro'] as const;
const GIVEN_HEAD = [
  'ael',
  'bry',
  'cyr',
  'dov',
  'eth',
  'fyn',
  'gal',
  'hyl',
  'ilv',
  'jas',
  'kyr',
  'lor',
  'mav',
  'nel',
  'ors',
  'pyr',
  'quil',
  'ryn',
  'sel',
  'tav',
  'uly',
  'vel',
  'wyn',
  'xen',
  'yav',
  'zor',
  'bel',
  'cor',
  'dal',
  'fen',
  'gil',
  'hal',
] as const;
const GIVEN_TAIL = [
  'andra',
  'ionel',
  'ettra',
  'orick',
  'iusta',
  'arvin',
  'ondra',
  'ellix',
  'irova',
  'avian',
  'emond',
  'ulvar',
  'istra',
  'edora',
  'inova',
  'olanth',
] as const;

export interface PatientIdentity {
  family: string;
  given: string;
  mrn: string;
  phone: string;
  addressLine: string;
  gender: 'male' | 'female' | 'other' | 'unknown';
  birthDate: string;
}

const GENDERS = ['male', 'female', 'female', 'male', 'other', 'unknown'] as const;

/** The synthetic identity of patient `index`. MRN and phone are bijections of the index, so distinct. */
function familyFrom(rng: Rng): string {
  return capitalise(rng.pick(FAMILY_HEAD) + rng.pick(FAMILY_MID) + rng.pick(FAMILY_MARK));
}

/** Just the family name of patient `index` (cheap: used in notes of that patient's resources). */
export function patientFamily(seed: number, index: number): string {
  return familyFrom(new Rng(hash32(seed, 0x51d, index)));
}

export function patientIdentity(seed: number, index: number): PatientIdentity {
  const rng = new Rng(hash32(seed, 0x51d, index));
  const family = familyFrom(rng);
  const given = capitalise(rng.pick(GIVEN_HEAD) + rng.pick(GIVEN_TAIL));
  const mrnDigits = (index * 7919 + (hash32(seed, 0x3a1) % 100_000_000)) % 100_000_000;
  const phoneDigits = (index * 7877 + (hash32(seed, 0x9f3) % 1_000_000)) % 1_000_000;
  const phoneExchange = String(Math.floor(phoneDigits / 10_000)).padStart(2, '0');
  const phone = `555-01${phoneExchange}-${String(phoneDigits % 10_000).padStart(4, '0')}`;
  const street = capitalise(rng.pick(FAMILY_HEAD) + rng.pick(FAMILY_MID));
  const addressLine = `${1 + rng.int(9899)} Synthetic ${street} Way`;
  const gender = rng.pick(GENDERS);
  const birth = new Date(Date.UTC(1930, 0, 1) + rng.int(85 * 365) * 86_400_000);
  return {
    family,
    given,
    mrn: `SYN-MRN-${String(mrnDigits).padStart(8, '0')}`,
    phone,
    addressLine,
    gender,
    birthDate: birth.toISOString().slice(0, 10),
  };
}

/** The distinctive strings of one identity, as a leak scan should look for them. */
export function identityStrings(identity: PatientIdentity): string[] {
  return [identity.family, identity.given, identity.mrn, identity.phone, identity.addressLine];
}
