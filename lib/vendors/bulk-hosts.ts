/**
 * Where Bulk Data files may come from. A manifest's file URL is followed only on the vendor's own origin
 * or on a host the integration names (`bulkFileHosts`: a storage bucket, a CDN); anything else is refused
 * before a request leaves. Whether the bearer token goes along is the manifest's `requiresAccessToken`,
 * decided by the caller: a file host never gets a token the manifest did not ask for.
 */
import { isLoopback } from './http-policy.js';

export type FileOrigin = 'vendor' | 'file-host' | 'refused';

/** A host entry as an operator writes it (`files.example.com`, `files.example.com:8443`), compared case-blind. */
function hostMatches(target: URL, entry: string): boolean {
  const want = entry.trim().toLowerCase();
  if (want.length === 0) return false;
  return want === target.host.toLowerCase() || (!want.includes(':') && want === target.hostname.toLowerCase());
}

export function fileOrigin(target: URL, baseUrl: string, fileHosts: readonly string[]): FileOrigin {
  if (target.protocol !== 'https:' && !(target.protocol === 'http:' && isLoopback(target))) return 'refused';
  if (target.username || target.password) return 'refused';
  if (target.origin === new URL(baseUrl).origin) return 'vendor';
  return fileHosts.some((entry) => hostMatches(target, entry)) ? 'file-host' : 'refused';
}

/**
 * A status URL must be on the vendor's own origin (https, or loopback http): our token goes to it on every
 * poll. Any path: the IG does not put status URLs under the FHIR base, and many servers do not.
 */
export function isVendorOrigin(target: URL, baseUrl: string): boolean {
  return target.origin === new URL(baseUrl).origin && !target.username && !target.password;
}
