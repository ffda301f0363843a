/**
 * What the HAPI FHIR interop suites need from outside npm: a JDK ≥ 17, and Maven unless the server is already
 * built in the cache. Missing: skipped and listed locally, a failed suite under CI=true (test/suites-not-run.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { findOnPath } from '../../dev/process.js';
import type { Requirement } from '../suites-not-run.js';
import { cachedHapiJarPath } from './hapi-build.js';

function javaAndMavenMissing(): string | undefined {
  const javaHome = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : undefined;
  if (!(javaHome && fs.existsSync(javaHome)) && !findOnPath('java'))
    return 'no java (JDK ≥ 17) on PATH or in JAVA_HOME';
  if (!fs.existsSync(cachedHapiJarPath()) && !findOnPath('mvn')) return 'no mvn on PATH to build the HAPI FHIR server';
  return undefined;
}

export const javaAndMaven: Requirement = {
  missing: javaAndMavenMissing(),
  fix: 'apt-get install -y openjdk-17-jdk-headless maven (.ci/run builds the server once)',
};
