/**
 * `ehrctl vendors matrix | show`: the vendor integration matrix from lib/vendors/profiles — what each
 * vendor supports, how sure we are, and the compensating control the connector applies where a
 * vendor is weak. Reads no database and no network: profiles are data in the code.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, NotFoundError } from '../../lib/errors/index.js';
import { factEntries } from '../../lib/vendors/profiles/compensating.js';
import { PROFILES } from '../../lib/vendors/profiles/index.js';
import { matrixEntry, matrixRow, renderMatrixMarkdown } from '../../lib/vendors/profiles/matrix.js';
import { VENDOR_IDS, isVendorId } from '../../lib/vendors/profiles/types.js';
import { print, printJson, table } from '../output.js';

const ALL = VENDOR_IDS.map((id) => PROFILES[id]);

export function registerVendorCommands(program: Command): void {
  const vendors = program
    .command('vendors')
    .description('vendor profiles: the integration matrix and compensating controls');
  vendors
    .command('matrix')
    .description(
      'every vendor’s auth, tokens, scopes, paging, bulk, push, ' +
        'limits and the controls we add (values carry confidence H/M/L)',
    )
    .option('--format <format>', 'table, json or md', 'table')
    .action((opts: { format: string }) => {
      switch (opts.format) {
        case 'table':
          table(ALL.map(matrixRow));
          return;
        case 'json':
          printJson(ALL.map(matrixEntry));
          return;
        case 'md':
          process.stdout.write(renderMatrixMarkdown(ALL));
          return;
        default:
          throw new InvalidArgumentError('--format', 'use table, json or md');
      }
    });
  vendors
    .command('show <vendor>')
    .description('one vendor: every fact with its value, confidence and source; weaknesses and recommended settings')
    .option('--json', 'print as JSON')
    .action((id: string, opts: { json?: boolean }) => {
      if (!isVendorId(id)) throw new NotFoundError('vendor', id.slice(0, 64));
      const entry = matrixEntry(PROFILES[id]);
      if (opts.json) {
        printJson(entry);
        return;
      }
      print(`${entry.profile.name} (${id})`);
      print();
      table(
        factEntries(entry.profile).map(([fact, f]) => ({
          fact,
          value: JSON.stringify(f.value),
          confidence: f.confidence,
          source: f.source,
        })),
      );
      print();
      if (entry.compensatingControls.length === 0) print('no weaknesses found: no compensating control needed');
      for (const c of entry.compensatingControls)
        print(`${c.weakness}: ${c.finding}\n  control: ${c.control}\n  setting: ${c.setting}`);
      print();
      const s = entry.recommendedSettings;
      print(
        `recommended: sync every ${s.syncIntervalHours} h · audit retention ${s.auditRetentionDays} days` +
          ` · field minimisation ${s.fieldMinimisation}` +
          ` · secret rotation ${s.secretRotationDays === null ? 'n/a' : `${s.secretRotationDays} days`}`,
      );
    });
}
