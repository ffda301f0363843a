/**
 * `npm run demo`: the whole product on the embedded stack, driven through ehrctl as a user would.
 * Brings the stack up, registers a tenant with two sandbox integrations, runs full syncs, changes
 * records in the sandbox, runs incremental syncs, syncs three vendor personalities side by side
 * (Epic, Oracle Health, eClinicalWorks) with their own auth styles and limits, prints counts, takes a
 * webhook through the delta sync, runs an incident drill to recovery, verifies the audit chain, prints
 * the Web UI URL and workflow ids, then stops everything it started (`npm run demo -- --keep`
 * leaves it running). A stack that was already running is used and left running. Exits non-zero if
 * any step fails, and its last lines say what is still running — only what is.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  describeFailure,
  ehrctl,
  ehrctlWith,
  issuedSecretRef,
  practiceGroupOf,
  sandboxAdmin,
  stackRunning,
  startedIds,
  step,
  waitFor,
  workflowIds,
  type StackStatus,
} from './demo-tools.js';

const keep = process.argv.includes('--keep');

/** The demo's last word on the stack: what it did with it, and what is running now. */
function finish(up: boolean, startedByDemo: boolean): void {
  if (!up) {
    console.log(
      stackRunning()
        ? '\nThe dev stack did not become ready but is running: `npx ehrctl dev status`, ' +
            '`npx ehrctl dev down` to stop it.'
        : '\nThe dev stack did not start (the reason is above); nothing was left running.',
    );
  } else if (!startedByDemo) {
    console.log('\nThe dev stack was running before the demo and stays running: `npx ehrctl dev down` stops it.');
  } else if (keep) {
    console.log('\nStack left running: `npx ehrctl dev status`, `npx ehrctl dev down` to stop.');
  } else {
    step('Stopping the stack (use `npm run demo -- --keep` to leave it running)');
    try {
      ehrctl('dev', 'down');
    } catch (err) {
      console.error(
        `could not stop the dev stack: ${(err as Error).message}; it may still run: ` +
          `\`npx ehrctl dev status\`, \`npx ehrctl dev down\``,
      );
      process.exitCode = 1;
    }
  }
}

async function main(): Promise<void> {
  let up = false;
  let startedByDemo = false;
  try {
    step(
      '1. Bring up the embedded stack (PostgreSQL, Temporal dev server + UI, sandbox vendors, ' +
        'worker, webhook receiver, codec server)',
    );
    const runningBefore = stackRunning();
    if (runningBefore) console.log('a dev stack is already running: the demo uses it and leaves it running');
    ehrctl('dev', 'up');
    up = true;
    startedByDemo = !runningBefore;
    // Read quietly: status --json carries the database URL with its (local, generated) password.
    const status = JSON.parse(ehrctlWith({ echo: false }, 'dev', 'status', '--json')) as StackStatus;

    const suffix = new Date().toISOString().replace(/\D/g, '').slice(2, 14);
    const tenant = `demo-${suffix}`;
    step('2. Register a tenant with two sandbox integrations');
    ehrctl('tenants', 'add', '--id', tenant, '--name', 'Demo Community Clinic (synthetic)');
    ehrctl('integrations', 'add', '--id', `${tenant}-ehr`, '--tenant', tenant, '--vendor', 'sandbox', '--alg', 'ES384');
    ehrctl(
      'integrations',
      'add',
      '--id',
      `${tenant}-sched`,
      '--tenant',
      tenant,
      '--vendor',
      'sandbox',
      '--alg',
      'RS384',
      '--types',
      'Patient,Appointment,Encounter',
    );
    ehrctl('integrations', 'list', '--tenant', tenant);

    step('3. Full sync of both integrations');
    ehrctl('sync', 'run', '--integration', `${tenant}-ehr`, '--wait');
    ehrctl('sync', 'run', '--integration', `${tenant}-sched`, '--wait');

    step('4. The vendor changes some records');
    await sandboxAdmin(status, '/admin/records/modify', { resourceType: 'Observation', count: 25 });
    await sandboxAdmin(status, '/admin/records/modify', { resourceType: 'Patient', count: 5 });
    await sandboxAdmin(status, '/admin/records/create', { resourceType: 'Appointment', count: 4 });
    console.log('modified 25 Observations and 5 Patients, created 4 Appointments');

    step('5. Incremental sync: only what changed since the checkpoints');
    ehrctl('sync', 'run', '--integration', `${tenant}-ehr`, '--wait');
    ehrctl('sync', 'run', '--integration', `${tenant}-sched`, '--wait');

    step(
      '6. Three vendor personalities side by side: Epic (private_key_jwt, SMART v1 scopes), ' +
        'Oracle Health (client_secret_basic), both by Bulk Data $export; ' +
        'eClinicalWorks (250 calls/min, no Retry-After) patient by patient',
    );
    ehrctl('vendors', 'matrix');
    // Epic and Oracle Health read by Bulk Data $export of the practice's Group; eClinicalWorks patient by patient.
    ehrctl(
      'integrations',
      'add',
      '--id',
      `${tenant}-epic`,
      '--tenant',
      tenant,
      '--vendor',
      'epic',
      '--alg',
      'RS384',
      '--group-id',
      await practiceGroupOf(status, 'epic'),
    );
    ehrctl(
      'integrations',
      'add',
      '--id',
      `${tenant}-oracle`,
      '--tenant',
      tenant,
      '--vendor',
      'oracle-health',
      '--client-secret-ref',
      issuedSecretRef(status, `${tenant}-oracle`),
      '--group-id',
      await practiceGroupOf(status, 'oracle-health'),
    );
    ehrctl(
      'integrations',
      'add',
      '--id',
      `${tenant}-ecw`,
      '--tenant',
      tenant,
      '--vendor',
      'eclinicalworks',
      '--purpose',
      'scheduling-sync',
    );
    const sideBySide = [`${tenant}-epic`, `${tenant}-oracle`, `${tenant}-ecw`].flatMap((id) =>
      startedIds(ehrctl('sync', 'run', '--integration', id)),
    );
    ehrctl('sync', 'wait', ...sideBySide);
    ehrctl('integrations', 'list', '--tenant', tenant);

    step('7. Stored (encrypted) records per type');
    ehrctl('records', 'count', '--tenant', tenant);

    step(
      "8. The vendors' compensating controls are each integration's settings; " +
        'a schedule from 02:00 America/Chicago at its sync interval',
    );
    ehrctl('integrations', 'show', `${tenant}-oracle`);
    ehrctl('schedule', 'nightly', '--integration', `${tenant}-ehr`, '--at', '02:00', '--timezone', 'America/Chicago');

    step('9. The vendor notifies changes by webhook (Standard Webhooks); the delta sync fetches just those');
    ehrctl('keys', 'rotate', '--webhook-secret', '--integration', `${tenant}-ehr`, '--wait');
    // The vendor was handed the secret out of band; here the sandbox plays the vendor and reads it.
    const secretFile = fs
      .readdirSync(status.secretsDir)
      .find((f) => f.startsWith(`webhook-${tenant}-ehr-v`) && f.endsWith('.secret'));
    if (!secretFile) throw new Error('the webhook secret file was not generated');
    const secret = fs.readFileSync(path.join(status.secretsDir, secretFile), 'utf8').trim();
    await sandboxAdmin(status, '/admin/webhooks/send', {
      url: `${status.webhookUrl}/webhooks/${tenant}-ehr`,
      secret,
      resourceTypes: ['Observation'],
      changes: 3,
    });
    console.log('the sandbox changed 3 Observations and delivered a signed notification');
    await waitFor('the delta sync', 120_000, () => {
      const w = JSON.parse(
        ehrctlWith({ echo: false }, 'webhooks', 'status', '--integration', `${tenant}-ehr`, '--json'),
      ) as { workflow?: { lastBatch?: { outcome: string } } };
      return w.workflow?.lastBatch !== undefined;
    });
    ehrctl('webhooks', 'status', '--integration', `${tenant}-ehr`);

    step(
      '10. Tabletop drill: contain the Epic integration, preserve evidence, rotate its keys, ' +
        'then recover after a second person approves',
    );
    const incidentId = `drill-${suffix}`;
    ehrctl(
      'incident',
      'declare',
      '--id',
      incidentId,
      '--scope',
      `integration:${tenant}-epic`,
      '--severity',
      'high',
      '--reason',
      'demo tabletop drill: client key assumed exposed',
      '--drill',
      '--as',
      'alice@example.org',
      '--rotation-grace-seconds',
      '5',
    );
    ehrctl(
      'incident',
      'approve',
      incidentId,
      '--as',
      'bob@example.org',
      '--note',
      'drill: vendor confirmed the old key is gone',
      '--wait',
    );
    ehrctl('incident', 'timeline', incidentId);
    workflowIds.push(`incident/${incidentId}`);

    step('11. Sign an audit checkpoint (copied to the anchor outside the database) and verify the trail');
    ehrctl('audit', 'checkpoint');
    ehrctl('audit', 'verify');

    step('Done');
    console.log(`Temporal Web UI: ${status.temporalUiUrl}`);
    console.log('Workflow runs:');
    for (const id of workflowIds)
      console.log(`  ${status.temporalUiUrl}/namespaces/default/workflows/${encodeURIComponent(id)}`);
  } catch (err) {
    console.error(`demo failed: ${describeFailure(err)}`);
    process.exitCode = 1;
  } finally {
    finish(up, startedByDemo);
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${describeFailure(err)}`);
  process.exit(1);
});
