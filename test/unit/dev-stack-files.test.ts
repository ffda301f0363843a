import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configFields, loadConfig } from '../../lib/config/schema.js';
import { readRunningStack, readStackEnv, stackPaths, writeStackFile, type StackInfo } from '../../dev/stack-files.js';
import { describeStack, devStatus, redactDatabaseUrl } from '../../dev/stack.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-dev-stack-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function info(pid: number): StackInfo {
  return {
    pid,
    startedAt: new Date().toISOString(),
    temporalAddress: '127.0.0.1:7233',
    temporalUiUrl: 'http://127.0.0.1:8233',
    namespace: 'default',
    taskQueue: 'ehr-connectors',
    databaseUrl: 'postgresql://postgres:s3cretpw@127.0.0.1:5555/ehr_connectors',
    sandboxUrl: 'http://127.0.0.1:9000',
    sandboxFhirBaseUrl: 'http://127.0.0.1:9000/fhir',
    sandboxTokenUrl: 'http://127.0.0.1:9000/oauth/token',
    sandboxAdminToken: 'admin-token-value',
    kekDir: path.join(tmp, 'keys'),
    secretsDir: path.join(tmp, 'secrets'),
    workerPid: process.pid,
    logDir: path.join(tmp, 'logs'),
  };
}

describe('stack.json', () => {
  it('maps a running stack to configuration variables that loadConfig accepts', () => {
    const paths = stackPaths({ EHR_DEV_DATA_DIR: path.join(tmp, 'running') });
    expect(readStackEnv(paths)).toBeUndefined();
    fs.mkdirSync(paths.dataDir, { recursive: true });
    writeStackFile(info(process.pid), paths);
    expect(fs.statSync(paths.stackFile).mode & 0o777).toBe(0o600);

    const env = readStackEnv(paths)!;
    expect(env).toMatchObject({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'ehr-connectors',
      DATABASE_URL: 'postgresql://postgres:s3cretpw@127.0.0.1:5555/ehr_connectors',
      EHR_KEK_DIR: path.join(tmp, 'keys'),
      EHR_SECRETS_DIR: path.join(tmp, 'secrets'),
      EHR_SANDBOX_URL: 'http://127.0.0.1:9000',
    });
    for (const { name, required } of configFields) if (required) expect(env[name]).toBeTruthy();
    expect(loadConfig(env).DATABASE_URL).toBe(env.DATABASE_URL);

    const status = devStatus({ EHR_DEV_DATA_DIR: paths.dataDir });
    expect(status).toMatchObject({ running: true, starting: false, workerRunning: true });
  });

  it('ignores a stack.json whose daemon is gone', () => {
    const paths = stackPaths({ EHR_DEV_DATA_DIR: path.join(tmp, 'stale') });
    fs.mkdirSync(paths.dataDir, { recursive: true });
    writeStackFile(info(2 ** 22 + 4321), paths);
    expect(readRunningStack(paths)).toBeUndefined();
    expect(readStackEnv(paths)).toBeUndefined();
    expect(devStatus({ EHR_DEV_DATA_DIR: paths.dataDir }).running).toBe(false);
  });

  it('ignores a malformed stack.json', () => {
    const paths = stackPaths({ EHR_DEV_DATA_DIR: path.join(tmp, 'bad') });
    fs.mkdirSync(paths.dataDir, { recursive: true });
    fs.writeFileSync(paths.stackFile, '{"pid": "nope"');
    expect(readStackEnv(paths)).toBeUndefined();
  });

  it('never shows the database password or the sandbox admin token in the summary', () => {
    const text = describeStack(info(process.pid)).join('\n');
    expect(text).not.toContain('s3cretpw');
    expect(text).not.toContain('admin-token-value');
    expect(text).toContain('127.0.0.1:5555/ehr_connectors');
    expect(redactDatabaseUrl('postgresql://u:p%40ss@h:1/d')).toBe('postgresql://u:***@h:1/d');
  });
});
