/**
 * What an operator types for an integration — purpose, resource types, base and token URLs, client id,
 * Bulk Data file hosts — checked the same way at registration (`integrations add`) and on change
 * (`integrations update`). The database functions that store URLs, client id and hosts check them again.
 */
import type { ResourceType } from '../domain.js';
import { RESOURCE_TYPES, isResourceType } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { Purpose } from '../fhir/classification.js';
import {
  DEFAULT_PURPOSE,
  PURPOSES,
  assertTypesWithinPurpose,
  isPurpose,
  purposePolicy,
} from '../fhir/classification.js';
import { assertTransportAllowed } from '../vendors/http-policy.js';

export function parsePurpose(purpose: string | undefined): Purpose {
  if (purpose === undefined || purpose === '') return DEFAULT_PURPOSE;
  if (!isPurpose(purpose))
    throw new InvalidArgumentError(
      '--purpose',
      `unknown purpose ${JSON.stringify(purpose)}; known: ${PURPOSES.join(', ')}`,
    );
  return purpose;
}

/** The purpose's types when none are given; otherwise the given ones, each supported and within the purpose. */
export function parseResourceTypes(types: string[] | undefined, purpose: Purpose): ResourceType[] {
  if (!types || types.length === 0) return [...purposePolicy(purpose).resourceTypes];
  const unknown = types.filter((t) => !isResourceType(t));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      '--types',
      `unsupported resource type(s) ${unknown.join(', ')}; supported: ${RESOURCE_TYPES.join(', ')}`,
    );
  assertTypesWithinPurpose(purpose, types);
  return [...new Set(types as ResourceType[])];
}

/** An absolute https (or loopback http) URL without credentials, query or fragment; no trailing slash. */
export function parseEndpointUrl(raw: string, flag: '--base-url' | '--token-url'): string {
  if (raw.length > 2048) throw new InvalidArgumentError(flag, 'longer than 2048 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError(flag, 'not an absolute URL');
  }
  // Checked first, and never echoed: a password in the URL would otherwise reach errors, output and audit rows.
  if (url.username !== '' || url.password !== '') {
    const hint = 'vendor credentials are given by reference (--client-secret-ref, --tls-key-ref)';
    throw new InvalidArgumentError(flag, `must not carry a user name or password; ${hint}`);
  }
  assertTransportAllowed(url);
  if (url.search || url.hash) throw new InvalidArgumentError(flag, 'must not carry a query or fragment');
  return url.toString().replace(/\/$/, '');
}

export function parseBaseUrl(raw: string): string {
  return parseEndpointUrl(raw, '--base-url');
}

/** A vendor-issued client id: printable ASCII without spaces, 1-255 characters. */
export function parseClientId(raw: string): string {
  if (!/^[\x21-\x7e]{1,255}$/.test(raw))
    throw new InvalidArgumentError('--client-id', '1-255 printable characters without spaces');
  return raw;
}

/** `--bulk-file-host files.example.com[:8443]` (repeatable): hosts besides the vendor's own. */
export function parseFileHosts(raw: readonly string[]): string[] {
  if (raw.length > 20) throw new InvalidArgumentError('--bulk-file-host', 'at most 20 hosts');
  const hosts = raw.map((h) => h.trim().toLowerCase());
  for (const h of hosts) {
    const ok =
      /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/.test(h) &&
      h.length <= 261;
    if (!ok)
      throw new InvalidArgumentError('--bulk-file-host', 'a host name, optionally with :port (no scheme, no path)');
  }
  return [...new Set(hosts)];
}
