/**
 * `ehrctl audit history <workflowId> [--decode]`: a workflow's history as an audit timeline. The
 * history is read as stored (encrypted); with --decode its payloads go to the codec server's /decode
 * with the caller's token — the same authorisation and audit as the Web UI, never keys loaded here.
 */
import type { Command } from 'commander';
import { convertPayloadsIn } from '../../lib/crypto/payload-codec.js';
import { remoteDecoder } from '../codec-client.js';
import { codecServerAccess } from './codec-access.js';
import { withContext } from '../context.js';
import { buildTimeline, formatTimeline } from '../history-timeline.js';
import { fetchWorkflowHistory } from '../temporal-errors.js';
import { print, printJson } from '../output.js';

interface HistoryOptions {
  runId?: string;
  decode?: boolean;
  json?: boolean;
  token?: string;
  codecUrl?: string;
  codecCa?: string;
}

export function registerAuditHistoryCommand(audit: Command): void {
  audit
    .command('history')
    .description(
      'a workflow history as a readable audit timeline (who started it, activities and outcomes, signals and senders)',
    )
    .argument('<workflowId>', 'the workflow id (e.g. a sync workflow id)')
    .option('--run-id <runId>', 'a specific run (default: the latest)')
    .option('--decode', 'decode payloads through the codec server (needs a token with the decode role; audited)')
    .option('--token <jwt>', 'bearer token for the codec server (default: EHR_CODEC_TOKEN; dev: `ehrctl dev token`)')
    .option('--codec-url <url>', 'codec server URL (default: EHR_CODEC_URL or the dev stack)')
    .option(
      '--codec-ca <file>',
      'extra CA certificate to trust for the codec server (default: EHR_CODEC_CA or the dev CA)',
    )
    .option('--json', 'machine-readable output')
    .action(async (workflowId: string, opts: HistoryOptions) =>
      withContext(async (ctx) => {
        let decoder: ReturnType<typeof remoteDecoder> | undefined;
        if (opts.decode) {
          const access = codecServerAccess(ctx, opts);
          decoder = remoteDecoder({ ...access, namespace: ctx.config.TEMPORAL_NAMESPACE });
        }
        const client = await ctx.rawTemporal();
        let history = await fetchWorkflowHistory(client.workflow.getHandle(workflowId, opts.runId));
        if (decoder) history = await convertPayloadsIn(history, decoder);
        const timeline = buildTimeline(history, decoder !== undefined);
        if (opts.json) {
          printJson({ workflowId, runId: opts.runId ?? null, decoded: decoder !== undefined, events: timeline });
          return;
        }
        const run = opts.runId ? ` run ${opts.runId}` : '';
        const payloads = decoder
          ? ' (payloads decoded by the codec server; this decode is audited)'
          : ' (payloads encrypted; --decode to read them)';
        print(`audit timeline of workflow ${workflowId}${run}${payloads}`);
        for (const line of formatTimeline(timeline)) print(line);
      }),
    );
}
