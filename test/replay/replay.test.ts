/**
 * Determinism guard: histories recorded from real sync runs (test/replay/histories/*.json, made by
 * `npx tsx test/replay/record-histories.ts` against a running dev stack) are replayed against the
 * current workflow code. A change that would break running workflows fails here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { workflowBundle } from '../integration/support.js';

const dir = path.join(__dirname, 'histories');
const files = fs.existsSync(dir)
  ? fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
  : [];

describe('replay of recorded histories', () => {
  it('has recorded histories of full, incremental and continued-as-new syncs to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it('replays every recorded history without nondeterminism', async () => {
    const histories = files.map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))),
    }));
    const results = Worker.runReplayHistories(
      { workflowBundle: await workflowBundle(), replayName: 'recorded-syncs' },
      histories,
    );
    let replayed = 0;
    for await (const result of results) {
      expect(result.error, result.workflowId).toBeUndefined();
      replayed += 1;
    }
    expect(replayed).toBe(files.length);
  });
});

describe('the replay check can fail', () => {
  it('reports nondeterminism when the workflow code changes incompatibly', async () => {
    const changed = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, 'fixtures/changed-workflows.ts') });
    const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, 'full-sync.json'), 'utf8')));
    const failure = await Worker.runReplayHistory({ workflowBundle: changed, replayName: 'changed' }, history).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(DeterminismViolationError);
  });
});
