/**
 * Synthetic clinical data for the interop FHIR server, written and changed over plain fetch with
 * transaction bundles, and the server's current ids and versions read back for exact assertions.
 * Every name and value is made up (deterministic per index); nothing resembles a real person.
 */
import { randomUUID } from 'node:crypto';
import {
  allPages,
  fhirJson,
  postBundle,
  refFromLocation,
  type Bundle,
  type BundleEntry,
  type FhirResource,
  type ResourceRef,
} from './hapi-fhir.js';

export const CORPUS_TYPES = [
  'Patient',
  'Encounter',
  'Observation',
  'Condition',
  'AllergyIntolerance',
  'MedicationRequest',
  'Group',
] as const;

export interface Corpus {
  /** Every resource created, in creation order. */
  refs: ResourceRef[];
  byType: Record<string, ResourceRef[]>;
  patients: ResourceRef[];
  /** A Group whose members are all the patients (for Group-level $export). */
  group: ResourceRef;
}

const GIVEN = ['Alder', 'Brisk', 'Cobalt', 'Dune', 'Ember', 'Fennel', 'Garnet', 'Hollow', 'Indigo', 'Juniper'];
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';

const quantity = (value: number, unit: string) => ({ value, unit, system: UCUM, code: unit });
const concept = (system: string, code: string, display: string) => ({
  coding: [{ system, code, display }],
  text: display,
});

/** Resources for one patient; references between them are urn:uuid fullUrls of the same bundle. */
function patientEntries(index: number, perPatient: number, day: string): BundleEntry[] {
  const entries: BundleEntry[] = [];
  const add = (resource: FhirResource): string => {
    const fullUrl = `urn:uuid:${randomUUID()}`;
    entries.push({ fullUrl, resource, request: { method: 'POST', url: resource.resourceType } });
    return fullUrl;
  };
  const patient = add({
    resourceType: 'Patient',
    identifier: [{ system: 'urn:ehr-connectors:interop:synthetic', value: `SYN-${index}` }],
    name: [{ family: `Synthetic${index}`, given: [GIVEN[index % GIVEN.length]!] }],
    gender: index % 2 === 0 ? 'female' : 'male',
    birthDate: `19${50 + (index % 50)}-0${1 + (index % 9)}-1${index % 10}`,
  });
  const subject = { reference: patient };
  add({
    resourceType: 'AllergyIntolerance',
    patient: subject,
    clinicalStatus: concept('http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', 'active', 'Active'),
    code: concept(SNOMED, '91936005', 'Allergy to penicillin'),
  });
  for (let k = 0; k < perPatient; k++) {
    const effectiveDateTime = `${day}T0${k % 10}:00:00Z`;
    const encounter = add({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
      subject,
      period: { start: effectiveDateTime, end: effectiveDateTime },
    });
    const context = { subject, encounter: { reference: encounter }, effectiveDateTime, status: 'final' };
    add({
      resourceType: 'Observation',
      ...context,
      category: [concept('http://terminology.hl7.org/CodeSystem/observation-category', 'vital-signs', 'Vital Signs')],
      code: concept(LOINC, '85354-9', 'Blood pressure panel'),
      component: [
        {
          code: concept(LOINC, '8480-6', 'Systolic blood pressure'),
          valueQuantity: quantity(110 + index + k, 'mm[Hg]'),
        },
        { code: concept(LOINC, '8462-4', 'Diastolic blood pressure'), valueQuantity: quantity(70 + k, 'mm[Hg]') },
      ],
    });
    const lab = [
      ['2345-7', 'Glucose [Mass/volume] in Serum or Plasma', 90 + k, 'mg/dL'],
      ['2160-0', 'Creatinine [Mass/volume] in Serum or Plasma', 1 + k / 10, 'mg/dL'],
    ] as const;
    const members = lab.map(([code, display, value, unit]) =>
      add({
        resourceType: 'Observation',
        ...context,
        code: concept(LOINC, code, display),
        valueQuantity: quantity(value, unit),
      }),
    );
    add({
      resourceType: 'Observation',
      ...context,
      category: [concept('http://terminology.hl7.org/CodeSystem/observation-category', 'laboratory', 'Laboratory')],
      code: concept(LOINC, '24323-8', 'Comprehensive metabolic 2000 panel - Serum or Plasma'),
      hasMember: members.map((reference) => ({ reference })),
    });
    add({
      resourceType: 'Condition',
      subject,
      encounter: { reference: encounter },
      clinicalStatus: concept('http://terminology.hl7.org/CodeSystem/condition-clinical', 'active', 'Active'),
      code: concept(SNOMED, '38341003', 'Hypertensive disorder'),
      recordedDate: effectiveDateTime,
    });
    add({
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      subject,
      encounter: { reference: encounter },
      medicationCodeableConcept: concept('http://www.nlm.nih.gov/research/umls/rxnorm', '197361', 'Amlodipine 5 MG'),
      authoredOn: effectiveDateTime,
    });
  }
  return entries;
}

/**
 * Resources created per patient: the Patient, an allergy, and 7 per encounter (the Encounter, a BP
 * panel, a lab panel and its 2 members, a Condition, a MedicationRequest).
 */
export const resourcesPerPatient = (perPatient: number): number => 2 + 7 * perPatient;

function refsFromResponse(response: Bundle, expected: number): ResourceRef[] {
  const refs = (response.entry ?? []).map((e) => refFromLocation(e.response?.location ?? ''));
  if (refs.length !== expected) throw new Error(`transaction answered ${refs.length} entries, sent ${expected}`);
  return refs;
}

/**
 * Creates `patients` synthetic patients with their records via transaction bundles of
 * `patientsPerBundle` patients each, then one Group of them all.
 */
export async function loadCorpus(
  baseUrl: string,
  options: { patients: number; perPatient: number; patientsPerBundle?: number },
): Promise<Corpus> {
  const refs: ResourceRef[] = [];
  const day = new Date().toISOString().slice(0, 10);
  const perBundle = Math.max(1, options.patientsPerBundle ?? 10);
  for (let first = 0; first < options.patients; first += perBundle) {
    const entries: BundleEntry[] = [];
    for (let i = first; i < Math.min(options.patients, first + perBundle); i++) {
      entries.push(...patientEntries(i, options.perPatient, day));
    }
    refs.push(...refsFromResponse(await postBundle(baseUrl, 'transaction', entries), entries.length));
  }
  const patients = refs.filter((r) => r.type === 'Patient');
  const groupEntry: BundleEntry = {
    resource: {
      resourceType: 'Group',
      type: 'person',
      actual: true,
      name: 'Synthetic interop cohort',
      member: patients.map((p) => ({ entity: { reference: `Patient/${p.id}` } })),
    },
    request: { method: 'POST', url: 'Group' },
  };
  const [group] = refsFromResponse(await postBundle(baseUrl, 'transaction', [groupEntry]), 1);
  refs.push(group!);
  const byType: Record<string, ResourceRef[]> = {};
  for (const ref of refs) (byType[ref.type] ??= []).push(ref);
  return { refs, byType, patients, group: group! };
}

const REVISION_URL = 'urn:ehr-connectors:interop:revision';

/**
 * One transaction that updates every resource in `refs` (an extension carrying `revision`), each
 * PUT conditional on the version read just before (If-Match), so a test can run it beside a sync
 * and know exactly which versions the server then holds. Returns the new refs, in input order.
 */
export async function updateInTransaction(
  baseUrl: string,
  refs: readonly ResourceRef[],
  revision = Date.now(),
): Promise<ResourceRef[]> {
  if (refs.length === 0) return [];
  const read = await postBundle(
    baseUrl,
    'batch',
    refs.map((r) => ({ request: { method: 'GET', url: `${r.type}/${r.id}` } })),
  );
  const entries: BundleEntry[] = (read.entry ?? []).map((e, i) => {
    const resource = e.resource;
    if (!resource || !e.response?.status.startsWith('200')) {
      throw new Error(`cannot update ${refs[i]!.type}/${refs[i]!.id}: read answered ${e.response?.status}`);
    }
    const extension = ((resource.extension as { url: string }[] | undefined) ?? []).filter(
      (x) => x.url !== REVISION_URL,
    );
    const updated = { ...resource, extension: [...extension, { url: REVISION_URL, valueInteger: revision % 2 ** 31 }] };
    return {
      resource: updated,
      request: {
        method: 'PUT',
        url: `${resource.resourceType}/${resource.id}`,
        ifMatch: `W/"${resource.meta?.versionId}"`,
      },
    };
  });
  return refsFromResponse(await postBundle(baseUrl, 'transaction', entries), entries.length);
}

/**
 * Deletes every resource in `refs` in one transaction (soft delete: each stays in _history as a
 * delete). References among them do not block it; one from a resource left standing does (HTTP 409).
 */
export async function deleteResources(baseUrl: string, refs: readonly ResourceRef[]): Promise<void> {
  if (refs.length === 0) return;
  await postBundle(
    baseUrl,
    'transaction',
    refs.map((r) => ({ request: { method: 'DELETE', url: `${r.type}/${r.id}` } })),
  );
}

/** The server's current (not deleted) resources of `type`: id → versionId, read fresh. */
export async function currentVersions(baseUrl: string, type: string): Promise<Map<string, string>> {
  const { entries } = await allPages(`${baseUrl}/${type}?_elements=id&_count=200&_sort=_id`, { fresh: true });
  const versions = new Map<string, string>();
  for (const e of entries) {
    const r = e.resource;
    if (r?.id && r.meta?.versionId) versions.set(r.id, r.meta.versionId);
  }
  return versions;
}

/** currentVersions for every corpus type. */
export async function currentVersionsByType(
  baseUrl: string,
  types: readonly string[] = CORPUS_TYPES,
): Promise<Record<string, Map<string, string>>> {
  const out: Record<string, Map<string, string>> = {};
  for (const type of types) out[type] = await currentVersions(baseUrl, type);
  return out;
}

/** Reads one resource as the server holds it now. */
export function readResource(baseUrl: string, ref: Pick<ResourceRef, 'type' | 'id'>): Promise<FhirResource> {
  return fhirJson(`${baseUrl}/${ref.type}/${ref.id}`, { fresh: true });
}
