/**
 * Where recovery registers fresh credentials for sandbox vendors. Restoring an integration at a
 * sandbox needs its admin endpoint (lib/revocation/revoke.ts restoreIntegration); the worker does not
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

/**
 * The dev stack's sandboxes as the worker receives them (EHR_DEV_SANDBOX_ADMINS); malformed: ignored, none
 * registered.
 */
export function registerDevSandboxAdmins(json: string | undefined): number {
  if (!json) return 0;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return 0;
  }
  if (!Array.isArray(parsed)) return 0;
  let n = 0;
  for (const s of parsed as Array<Record<string, unknown>>) {
    if (typeof s.fhirBaseUrl === 'string' && typeof s.url === 'string' && typeof s.adminToken === 'string') {
      registerSandboxAdmin(s.fhirBaseUrl, { url: s.url, adminToken: s.adminToken });
      n++;
    }
  }
  return n;
}
