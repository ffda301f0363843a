/** Building blocks of the sandbox's synthetic FHIR resources: code systems, codings, instants. */
import type { Rng } from './prng.js';

export type FhirResource = {
  resourceType: string;
  id: string;
  meta: { versionId: string; lastUpdated: string };
} & Record<string, unknown>;

export interface GenerationContext {
  seed: number;
  /** Number of base patients that other resources may reference. */
  patientCount: number;
}

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const UCUM = 'http://unitsofmeasure.org';
export const DAY_MS = 86_400_000;
const CLINICAL_EPOCH_MS = Date.UTC(2022, 0, 1);
/** A 1x1 transparent PNG: stands in for a patient photo. */
export const TINY_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

export function coding(system: string, code: string, display?: string): { coding: Array<Record<string, string>> } {
  return { coding: [display === undefined ? { system, code } : { system, code, display }] };
}
export function concept(
  system: string,
  code: string,
  display: string,
): { coding: Array<Record<string, string>>; text: string } {
  return { coding: [{ system, code, display }], text: display };
}
/** Deep-freezes shared catalogue objects: they are reused by many resources and only ever serialised. */
export function frozen<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}

const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const dayPrefixes = new Map<number, string>();
const YEAR_10000_MS = Date.UTC(10000, 0, 1);
/** Date#toISOString, several times faster (day prefixes cached, time of day from lookup tables). */
export function iso(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  let prefix = dayPrefixes.get(day);
  if (prefix === undefined) {
    prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    if (dayPrefixes.size >= 20_000) dayPrefixes.clear();
    dayPrefixes.set(day, prefix);
  }
  let rest = ms - day * DAY_MS;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const sec = rest % 60;
  rest = (rest - sec) / 60;
  return `${prefix}${PAD2[Math.floor(rest / 60)]}:${PAD2[rest % 60]}:${PAD2[sec]}.${PAD3[milli]}Z`;
}
/** A clinical instant in 2022–2024, seconds precision. */
export function clinicalMs(rng: Rng): number {
  return CLINICAL_EPOCH_MS + rng.int(3 * 365) * DAY_MS + rng.int(86_400) * 1000;
}
export function cycle<T>(items: readonly T[], start: number, version: number): T {
  return items[(start + version - 1) % items.length] as T;
}

/** What every builder of one resource starts from (sandbox/resources.ts computes it). */
export interface ResourceBase {
  ctx: GenerationContext;
  index: number;
  version: number;
  id: string;
  meta: FhirResource['meta'];
  rng: Rng;
  /** The patient whose record this is. */
  ref: { reference: string };
  patientIndex: number;
  /** A clinical instant (ms) of this resource. */
  when: number;
}

export const CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category';
