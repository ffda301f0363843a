/**
 * Where recovery registers fresh credentials for sandbox vendors. Restoring an integration at a
 * sandbox needs its admin endpoint (lib/vendors/revocation.ts restoreIntegration); the worker does not
 * know it from configuration, so whoever starts a sandbox in-process (tests, the benchmark, the dev
 * stack) registers it here by its FHIR base URL. Real vendors need none.
 */
import type { SandboxAdmin } from '../vendors/sandbox-registration.js';

const admins = new Map<string, SandboxAdmin>();

export function registerSandboxAdmin(fhirBaseUrl: string, admin: SandboxAdmin): void {
  admins.set(fhirBaseUrl.replace(/\/+$/, ''), admin);
}

export function sandboxAdminFor(baseUrl: string): SandboxAdmin | undefined {
  return admins.get(baseUrl.replace(/\/+$/, ''));
}
