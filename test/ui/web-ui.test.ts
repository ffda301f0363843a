/**
 * The Temporal Web UI shows a sync's decoded input through the codec server (DESIGN §4.2, §7): a
 * Temporal dev server WITH its UI and --ui-codec-endpoint, a real codec server (HTTPS, generated CA,
 * JWT + session cookie, audit), a worker, a real sync; then Debian's chromium (driven by
 * playwright-core, never a downloaded browser) logs in at the codec server from the UI's origin and
 * opens the workflow. Without the cookie the UI cannot decode; with it the tenant id inside the input
 * JSON is visible, and the decode is audited under the token's subject.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';
import { startSync, syncResult } from '../../client/sync-client.js';
import type { Config } from '../../lib/config/schema.js';
import { findFreePort } from '../../dev/ports.js';
import { resolveTemporalCli } from '../../dev/temporal-cli.js';
import type { TemporalDevServer } from '../../dev/temporal-server.js';
import { ENCRYPTED_ENCODING } from '../../lib/crypto/payload-codec.js';
import type { Pool } from '../../lib/store/pool.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import { uniqueId } from '../harness.js';
import { startScannedTemporalDevServer } from '../security/scanned-temporal.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import type { TestCodecServer } from '../integration/codec-support.js';
import { startTestCodecServer } from '../integration/codec-support.js';
import type { RunningWorker } from '../integration/support.js';
import {
  registerSandboxTenant,
  startInProcessWorker,
  startTestSandbox,
  testConfig,
  testPool,
} from '../integration/support.js';

// The browser globals used inside page.evaluate callbacks (this project compiles without the DOM lib).
declare const document: { body: { innerText: string }; cookie: string };
declare const localStorage: { setItem(key: string, value: string): void };

const CHROMIUM = '/usr/bin/chromium';
const chromiumInstalled = {
  missing: fs.existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`,
  fix: 'apt-get install -y chromium (.ci/run installs it)',
};

describeWhenAvailable(__filename, 'Temporal Web UI with the codec server', [chromiumInstalled], () => {
  let temporal: TemporalDevServer;
  let codec: TestCodecServer;
  let pool: Pool;
  let config: Config;
  let sandbox: SandboxHandle;
  let worker: RunningWorker;
  let connection: Connection;
  let browser: BrowserContext;
  let uiUrl: string;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-chromium-'));

  beforeAll(async () => {
    pool = testPool();
    const uiPort = await findFreePort();
    uiUrl = `http://127.0.0.1:${uiPort}`;
    config = testConfig();
    codec = await startTestCodecServer(config, pool, uiUrl);
    // Its histories are preserved for the end-of-run leak scan when it stops (it stops before the scan).
    temporal = await startScannedTemporalDevServer({
      label: 'web-ui',
      cliPath: await resolveTemporalCli(),
      uiPort,
      uiCodecEndpoint: codec.url,
    });
    config = { ...config, TEMPORAL_ADDRESS: temporal.address };
    sandbox = await startTestSandbox({ size: 60 });
    worker = await startInProcessWorker(config);
    connection = await Connection.connect({ address: temporal.address });
  });

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await connection?.close();
    await sandbox?.close();
    await temporal?.stop();
    await codec?.close();
    await pool?.end();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  it('shows the decoded sync input only after the codec server login, and audits the decode', async () => {
    const t0 = Date.now();
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, sandbox);
    const client = new Client({
      connection,
      dataConverter: { payloadCodecs: [await openPayloadCodec(config, { pool, actor: 'test:web-ui' })] },
    });
    // A workflow id without the tenant id, so the tenant id on the page can only come from the decoded input.
    const workflowId = uniqueId('ui-sync');
    const handle = await startSync(
      client,
      config.TEMPORAL_TASK_QUEUE,
      { tenantId, integrationId: integrationIds[0]!, vendor: 'sandbox' },
      { workflowId },
    );
    await syncResult(handle);
    const runId = handle.firstExecutionRunId;

    // The raw history (what Temporal stores, what a UI without the codec gets) holds only ciphertext.
    const raw = await new Client({ connection }).workflow.getHandle(workflowId).fetchHistory();
    const input = raw.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    expect(input.length).toBe(1);
    expect(Buffer.from(input[0]!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(input[0]!.data!).toString('latin1')).not.toContain(tenantId);

    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      ignoreHTTPSErrors: true,
      viewport: { width: 1400, height: 1000 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--ignore-certificate-errors',
      ],
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const cdp = await browser.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on(
      'Network.responseReceivedExtraInfo',
      (e: { blockedCookies?: unknown[]; headers?: Record<string, string> }) => {
        // Names and reasons only: never print a cookie's value.
        for (const b of (e.blockedCookies ?? []) as Array<{ blockedReasons: string[]; cookie?: { name: string } }>) {
          console.log(`[web-ui] browser blocked cookie ${b.cookie?.name ?? '?'}: ${b.blockedReasons.join(', ')}`);
        }
      },
    );
    await page.goto(`${uiUrl}/namespaces/default/workflows`, { waitUntil: 'domcontentloaded' });
    // The UI's Codec Server settings ("include cross-origin credentials"), as an engineer would set them.
    await page.evaluate((endpoint) => {
      localStorage.setItem('endpoint', JSON.stringify(endpoint));
      localStorage.setItem('includeCredentials', 'true');
      localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
    }, codec.url);

    const workflowPage = `${uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
    const text = () => page.evaluate(() => document.body.innerText);

    // Before login: the codec server refuses (401), so the input stays undecoded.
    await page.goto(workflowPage, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => document.body.innerText.includes('Input'), undefined, { timeout: 60_000 });
    await page.waitForTimeout(1_500);
    expect(await text()).not.toContain(tenantId);

    // Log in at the codec server from the UI's origin: the session cookie (Secure, HttpOnly, SameSite=None,
    // Partitioned — Chromium blocks unpartitioned third-party cookies by default; the CDP listener above
    // says so by name if it ever blocks this one).
    const sub = uniqueId('ui-engineer');
    const token = await codec.token({ sub });
    const login = await page.evaluate(
      async ({ url, token }) => {
        const res = await fetch(`${url}/login`, {
          method: 'POST',
          credentials: 'include',
          headers: { authorization: `Bearer ${token}` },
        });
        return { status: res.status, cookieVisibleToScript: document.cookie.includes('ehr_codec_session') };
      },
      { url: codec.url, token },
    );
    expect(login).toEqual({ status: 200, cookieVisibleToScript: false });

    await page.goto(workflowPage, { waitUntil: 'domcontentloaded' });
    try {
      await page.waitForFunction((needle) => document.body.innerText.includes(needle), tenantId, { timeout: 60_000 });
    } catch (err) {
      const shot = path.join(os.tmpdir(), 'ehr-web-ui-failure.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`[web-ui] the decoded input did not appear; screenshot: ${shot}`);
      throw err;
    }
    const shown = await text();
    expect(shown).toContain(tenantId);
    expect(shown).toContain(integrationIds[0]!);
    const screenshot = path.join(os.tmpdir(), 'ehr-web-ui-decoded-input.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(
      `[web-ui] decoded input visible ${((Date.now() - t0) / 1000).toFixed(1)} s after the sync ` +
        `started; screenshot: ${screenshot}`,
    );

    const audited = await pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM audit_events WHERE action = 'codec.decode' AND actor = $1
          AND outcome = 'success' AND details->>'via' = 'session'`,
      [sub],
    );
    expect(Number(audited.rows[0]!.n)).toBeGreaterThan(0);
  });
});
