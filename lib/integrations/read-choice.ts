/**
 * An integration's read strategy and its options as an operator gives them (`integrations add|update
 * --strategy bulk|patient|search --group-id … --bulk-level … --type-filter … --roster-search …
 * --overlap-seconds …`), checked against what the vendor profile says the vendor offers. Pure: unit-tested.
 * Options that do not apply to the strategy are refused when given, and dropped when a strategy change
 * leaves them behind (the caller reports what was dropped).
 */
import type { ReadOptions, ReadStrategy } from '../domain.js';
import { READ_STRATEGIES, isReadStrategy } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { VendorProfile } from '../vendors/profiles/types.js';

export interface ReadChoiceInput {
  strategy?: string;
  bulkLevel?: string;
  groupId?: string;
  typeFilter?: string[];
  rosterSearch?: string;
  overlapSeconds?: string | number;
}

export interface ReadChoice {
  /** null: the vendor profile's default. */
  strategy: ReadStrategy | null;
  options: ReadOptions;
  /** Options of the previous strategy that no longer apply (update only). */
  dropped: Array<keyof ReadOptions>;
}

const APPLIES: Record<ReadStrategy, ReadonlyArray<keyof ReadOptions>> = {
  bulk: ['bulkLevel', 'groupId', 'typeFilter', 'overlapSeconds'],
  patient: ['groupId', 'rosterSearch', 'overlapSeconds'],
  search: ['overlapSeconds'],
};
const FLAG: Record<keyof ReadOptions, string> = {
  bulkLevel: '--bulk-level',
  groupId: '--group-id',
  typeFilter: '--type-filter',
  rosterSearch: '--roster-search',
  overlapSeconds: '--overlap-seconds',
};
const BULK_LEVELS = ['system', 'group', 'patient'] as const;
const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;
/** `Type?param=value&…`: identifiers and search values only, no spaces (they reach workflow histories). */
const TYPE_FILTER = /^[A-Z][A-Za-z]{1,63}\?[A-Za-z0-9_.:|,=&%/+*-]{1,500}$/;
const QUERY = /^[A-Za-z0-9_.:|,=&%/+*-]{1,500}$/;

/** True when the input names a strategy or any option. */
export function readChoiceGiven(input: ReadChoiceInput): boolean {
  return Object.values(input).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0));
}

export function parseReadChoice(
  profile: VendorProfile,
  input: ReadChoiceInput,
  current: { strategy: ReadStrategy | null; options: ReadOptions } = { strategy: null, options: {} },
): ReadChoice {
  if (input.strategy !== undefined && !isReadStrategy(input.strategy))
    throw new InvalidArgumentError('--strategy', `one of ${READ_STRATEGIES.join(', ')}`);
  const strategy = (input.strategy as ReadStrategy | undefined) ?? current.strategy;
  const effective = strategy ?? profile.reads.value.defaultStrategy;
  const given = givenOptions(input);
  for (const key of Object.keys(given) as Array<keyof ReadOptions>) {
    if (!APPLIES[effective].includes(key))
      throw new InvalidArgumentError(FLAG[key], `does not apply to the ${effective} read strategy`);
  }
  const merged: ReadOptions = { ...current.options, ...given };
  const dropped = (Object.keys(merged) as Array<keyof ReadOptions>).filter((k) => !APPLIES[effective].includes(k));
  for (const k of dropped) delete merged[k];
  // Nothing given: the profile's default stands unchecked (it may need a group id the vendor sets up later).
  if (readChoiceGiven(input)) checkStrategy(profile, effective, merged);
  return { strategy, options: merged, dropped };
}

function givenOptions(input: ReadChoiceInput): ReadOptions {
  const out: ReadOptions = {};
  if (input.bulkLevel !== undefined) {
    if (!(BULK_LEVELS as readonly string[]).includes(input.bulkLevel))
      throw new InvalidArgumentError('--bulk-level', `one of ${BULK_LEVELS.join(', ')}`);
    out.bulkLevel = input.bulkLevel as ReadOptions['bulkLevel'];
  }
  if (input.groupId !== undefined) {
    if (!FHIR_ID.test(input.groupId))
      throw new InvalidArgumentError('--group-id', 'a FHIR id (1-64 of A-Z a-z 0-9 - .)');
    out.groupId = input.groupId;
  }
  if (input.typeFilter !== undefined && input.typeFilter.length > 0) {
    if (input.typeFilter.length > 20) throw new InvalidArgumentError('--type-filter', 'at most 20');
    for (const f of input.typeFilter)
      if (!TYPE_FILTER.test(f))
        throw new InvalidArgumentError('--type-filter', 'a search such as Observation?category=laboratory (no spaces)');
    out.typeFilter = [...new Set(input.typeFilter)];
  }
  if (input.rosterSearch !== undefined) {
    const q = input.rosterSearch.replace(/^\?/, '');
    if (!QUERY.test(q)) throw new InvalidArgumentError('--roster-search', 'a Patient search query, e.g. active=true');
    out.rosterSearch = q;
  }
  if (input.overlapSeconds !== undefined) {
    const n = Number(input.overlapSeconds);
    if (!/^\d{1,5}$/.test(String(input.overlapSeconds)) || n > 86_400)
      throw new InvalidArgumentError('--overlap-seconds', 'a whole number of seconds from 0 to 86400');
    out.overlapSeconds = n;
  }
  return out;
}

/** What the vendor offers decides what may be chosen. */
function checkStrategy(profile: VendorProfile, strategy: ReadStrategy, options: ReadOptions): void {
  switch (strategy) {
    case 'bulk': {
      const bulk = profile.bulk.value;
      if (!bulk.supported) throw new InvalidArgumentError('--strategy', `${profile.name} offers no Bulk Data $export`);
      const level = options.bulkLevel ?? bulk.levels[0];
      if (!level || !bulk.levels.includes(level))
        throw new InvalidArgumentError('--bulk-level', `${profile.name} offers $export at: ${bulk.levels.join(', ')}`);
      if (level === 'group' && !options.groupId)
        throw new InvalidArgumentError('--group-id', 'group-level $export needs the Group id the vendor set up');
      return;
    }
    case 'patient':
      if (!options.groupId && !options.rosterSearch)
        throw new InvalidArgumentError(
          '--group-id',
          'the patient strategy needs a roster: --group-id <Group id> or --roster-search <Patient query>',
        );
      return;
    case 'search':
      if (!profile.reads.value.systemSearch)
        throw new InvalidArgumentError(
          '--strategy',
          `${profile.name} does not allow system-wide searches of clinical types: use bulk or patient`,
        );
      return;
  }
}
