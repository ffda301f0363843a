/**
 * Which patient a generated record belongs to, and the reverse (a patient's records of a type), so that
 * patient-scoped searches (`Observation?patient=…`) cost O(that patient's records), not a scan.
 *
 * patientIndexOf mirrors the first draw of resources.ts's generator (the record's own Rng, first
 * `int(patientCount)`); test/unit/sandbox-patient-index.test.ts renders records and checks every
 * type's reference against it, so a change there cannot go unnoticed.
 */
import type { ResourceType } from '../lib/domain.js';
import { parseResourceId, typeIndex } from './data.js';
import { Rng, hash32 } from './prng.js';
import type { RecordStore } from './store.js';

export function patientIndexOf(seed: number, patientCount: number, type: ResourceType, index: number): number {
  if (type === 'Patient') return index;
  return new Rng(hash32(seed, typeIndex(type), index)).int(patientCount);
}

/** Compressed rows: for patient p, record indices rows[start[p] .. start[p+1]). */
interface TypeIndex {
  builtFor: number;
  start: Int32Array;
  rows: Int32Array;
  /** Records created after the build (index >= builtFor), by patient. */
  extra: Map<number, number[]>;
}

export class PatientIndex {
  private readonly byType = new Map<ResourceType, TypeIndex>();

  constructor(private readonly store: RecordStore) {}

  /** The patient's index when `reference` (`Patient/<id>` or `<id>`) names a patient of this data set. */
  patientOf(reference: string): number | undefined {
    const id = reference.startsWith('Patient/') ? reference.slice('Patient/'.length) : reference;
    const parsed = parseResourceId(this.store.seed, id);
    if (!parsed || parsed.type !== 'Patient' || parsed.index >= this.store.count('Patient')) return undefined;
    return parsed.index;
  }

  /** Indices of every record of the type (any state) that belongs to the patient. */
  recordsOf(type: ResourceType, patient: number): number[] {
    if (type === 'Patient') return patient < this.store.count('Patient') ? [patient] : [];
    const idx = this.build(type);
    const out: number[] = [];
    if (patient < idx.start.length - 1) {
      for (let r = idx.start[patient] as number; r < (idx.start[patient + 1] as number); r++)
        out.push(idx.rows[r] as number);
    }
    out.push(...(idx.extra.get(patient) ?? []));
    return out;
  }

  private build(type: ResourceType): TypeIndex {
    const { seed, patientCount } = this.store.ctx;
    const size = this.store.count(type);
    let idx = this.byType.get(type);
    if (!idx) {
      const n = this.store.baseCount(type);
      const owner = new Int32Array(n);
      const start = new Int32Array(patientCount + 1);
      for (let i = 0; i < n; i++) {
        const p = patientIndexOf(seed, patientCount, type, i);
        owner[i] = p;
        (start[p + 1] as number)++;
      }
      for (let p = 0; p < patientCount; p++) start[p + 1] = (start[p + 1] as number) + (start[p] as number);
      const fill = start.slice(0, patientCount);
      const rows = new Int32Array(n);
      for (let i = 0; i < n; i++) rows[(fill[owner[i] as number] as number)++] = i;
      idx = { builtFor: n, start, rows, extra: new Map() };
      this.byType.set(type, idx);
    }
    for (let i = idx.builtFor; i < size; i++) {
      const p = patientIndexOf(seed, patientCount, type, i);
      const list = idx.extra.get(p) ?? [];
      list.push(i);
      idx.extra.set(p, list);
    }
    idx.builtFor = Math.max(idx.builtFor, size);
    return idx;
  }
}
