/** The data classes an element can belong to (lib/fhir/classification-rules.ts assigns them). */
export const DATA_CLASSES = [
  /** resourceType, id, meta (versionId/lastUpdated only), status, modifiers: needed to store any record at all. */
  'administrative',
  /** Business identifiers (MRNs) and references that point at the patient or encounter. */
  'identifiers',
  'demographics',
  'clinical-notes',
  'diagnoses',
  /** Procedures performed and devices implanted or used. */
  'procedures',
  'medications',
  'labs-vitals',
  /** Care plans, goals, care teams and service requests (orders). */
  'care-plans',
  'scheduling',
  'billing',
] as const;
export type DataClass = (typeof DATA_CLASSES)[number];
