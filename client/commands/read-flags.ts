/** The read strategy flags `integrations add` and `integrations update` share. */
import type { Command } from 'commander';
import type { ReadChoiceInput } from '../../lib/integrations/read-choice.js';

export interface ReadFlags {
  strategy?: string;
  groupId?: string;
  bulkLevel?: string;
  typeFilter: string[];
  rosterSearch?: string;
  overlapSeconds?: string;
  bulkFileHost: string[];
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function withReadFlags(cmd: Command): Command {
  return cmd
    .option('--strategy <strategy>', "how to read the population: bulk, patient or search (default: the vendor's)")
    .option('--group-id <id>', 'bulk at group level, and the patient roster: the Group id the vendor set up')
    .option('--bulk-level <level>', 'bulk: system, group or patient (default: the first the vendor offers)')
    .option(
      '--type-filter <query>',
      'bulk: a _typeFilter such as Observation?category=laboratory (repeatable)',
      collect,
      [],
    )
    .option(
      '--roster-search <query>',
      'patient: the roster as a Patient search (e.g. active=true) when there is no Group',
    )
    .option(
      '--overlap-seconds <n>',
      "incremental reads reach back this far before the checkpoint (default: the vendor's)",
    )
    .option(
      '--bulk-file-host <host>',
      "a host besides the vendor's own that may serve Bulk Data output files (repeatable)",
      collect,
      [],
    );
}

export function readInput(f: ReadFlags): ReadChoiceInput {
  return {
    ...(f.strategy !== undefined ? { strategy: f.strategy } : {}),
    ...(f.groupId !== undefined ? { groupId: f.groupId } : {}),
    ...(f.bulkLevel !== undefined ? { bulkLevel: f.bulkLevel } : {}),
    ...(f.typeFilter.length > 0 ? { typeFilter: f.typeFilter } : {}),
    ...(f.rosterSearch !== undefined ? { rosterSearch: f.rosterSearch } : {}),
    ...(f.overlapSeconds !== undefined ? { overlapSeconds: f.overlapSeconds } : {}),
  };
}
