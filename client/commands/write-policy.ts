/**
 * `ehrctl writes policy show | set`: which side owns which elements of a type for one integration — the write
 * policy the gateway enforces on local changes and reconciliation applies (lib/writeback/authority.ts). `set`
 * changes the policy in force (the built-in default until the first change) with a reason, audited.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import type { WritePolicyView } from '../../lib/writeback/write-policies.js';
import { setWritePolicy, showWritePolicies } from '../../lib/writeback/write-policies.js';
import { withContext } from '../context.js';
import { print, printJson } from '../output.js';

function onOff(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value !== 'on' && value !== 'off') throw new InvalidArgumentError(flag, 'on or off');
  return value === 'on';
}

function elementPairs(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const m = /^([A-Za-z_][A-Za-z0-9_]{0,63})=([a-z-]{1,20})$/.exec(value);
    if (!m)
      throw new InvalidArgumentError('--element', `${JSON.stringify(value.slice(0, 80))}: expected element=authority`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

function printPolicy(v: WritePolicyView): void {
  const source = v.source === 'default' ? 'built-in default' : `set by ${v.updatedBy} at ${v.updatedAt}`;
  print(
    `${v.resourceType}: create ${v.policy.create ? 'on' : 'off'}, update ${v.policy.update ? 'on' : 'off'} (${source})`,
  );
  const listed = Object.entries(v.policy.elements);
  for (const [element, authority] of listed) print(`  ${element}: ${authority}`);
  print(`  every other element: remote (the EHR's)`);
}

/** Adds `policy show | set` to the `writes` command group. */
export function registerWritePolicyCommands(writes: Command): void {
  const policy = writes.command('policy').description("an integration's write policy: which side owns which elements");
  policy
    .command('show')
    .description('the write policies in force for an integration (the built-in defaults until changed)')
    .requiredOption('--integration <id>', 'the integration')
    .option('--type <type>', 'one resource type')
    .option('--json', 'machine-readable output')
    .action(async (opts: { integration: string; type?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const views = await showWritePolicies(await ctx.db(), opts.integration, opts.type);
        if (opts.json) return printJson(views);
        for (const v of views) printPolicy(v);
      }),
    );
  policy
    .command('set')
    .description("change a type's write policy for an integration (audited, with the reason)")
    .requiredOption('--integration <id>', 'the integration')
    .requiredOption('--type <type>', 'the resource type')
    .option(
      '--element <element=authority...>',
      'an element and its authority: remote, local, shared or local-only (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--create <on|off>', 'may the organisation create resources of this type at the EHR')
    .option('--update <on|off>', 'may it change existing ones (element by element)')
    .requiredOption('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        integration: string;
        type: string;
        element?: string[];
        create?: string;
        update?: string;
        reason: string;
        json?: boolean;
      }) =>
        withContext(async (ctx) => {
          const create = onOff('--create', opts.create);
          const update = onOff('--update', opts.update);
          const elements = elementPairs(opts.element ?? []);
          if (Object.keys(elements).length === 0 && create === undefined && update === undefined)
            throw new InvalidArgumentError('--element', 'give at least one --element, --create or --update');
          const v = await setWritePolicy(
            await ctx.db(),
            {
              integrationId: opts.integration,
              resourceType: opts.type,
              elements,
              ...(create !== undefined ? { create } : {}),
              ...(update !== undefined ? { update } : {}),
              reason: opts.reason,
            },
            ctx.audit,
          );
          if (opts.json) return printJson(v);
          printPolicy(v);
        }),
    );
}
