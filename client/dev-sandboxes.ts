/**
 * The dev stack's sandboxes as ehrctl sees them: the standard sandbox (vendor `sandbox`) and one per
 * vendor personality (vendor `epic` meets the Epic-shaped sandbox). Registration defaults the base URL
 * from here and registers the client with whichever sandbox the base URL belongs to.
 */
import { DevSandbox } from '../dev/stack-files.js';

interface StackReader {
  stack(name: string): string | undefined;
}

export interface SandboxAdmin {
  url: string;
  adminToken: string;
}

function devSandboxes(ctx: StackReader): DevSandbox[] {
  const all: DevSandbox[] = [];
  const url = ctx.stack('EHR_SANDBOX_URL');
  const adminToken = ctx.stack('EHR_SANDBOX_ADMIN_TOKEN');
  const fhirBaseUrl = ctx.stack('EHR_SANDBOX_FHIR_BASE_URL');
  if (url && adminToken && fhirBaseUrl) all.push({ personality: 'sandbox', url, adminToken, fhirBaseUrl });
  const raw = ctx.stack('EHR_SANDBOXES');
  if (raw) {
    const parsed = DevSandbox.array().safeParse(JSON.parse(raw));
    if (parsed.success) all.push(...parsed.data);
  }
  return all;
}

/** The dev stack's FHIR base URL for a vendor id, if the stack runs a sandbox for it. */
export function devBaseUrlFor(ctx: StackReader, vendor: string): string | undefined {
  return devSandboxes(ctx).find((s) => s.personality === vendor)?.fhirBaseUrl;
}

/** The admin endpoint of the dev-stack sandbox serving `baseUrl`, if it is one of them. */
export function devSandboxAdminFor(ctx: StackReader, baseUrl: string): SandboxAdmin | undefined {
  const origin = new URL(baseUrl).origin;
  const match = devSandboxes(ctx).find((s) => new URL(s.url).origin === origin);
  return match ? { url: match.url, adminToken: match.adminToken } : undefined;
}
