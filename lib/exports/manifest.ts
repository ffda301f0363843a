/**
 * An export's manifest: what the job wrote (counts, the SHA-256 of every file as written, the job key's
 * id, types, since, purpose, when) signed as a compact Ed25519 JWS with the audit signing key — the key
 * that signs audit checkpoints (lib/audit/checkpoint-jws.ts), its public keys trusted by kid. Written as
 * `manifest.json`: `{ manifest, jws }`, where the JWS payload is the canonical JSON of `manifest`.
 * Verification (`ehrctl export verify`) checks the signature, that the readable manifest is the signed
 * one, and every file's checksum, naming what does not match. No clinical content is in a manifest.
 */
import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import canonicalize from 'canonicalize';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_JWS_TYPE = 'ehr-export-manifest+jws';
export const EXPORT_FORMAT = 'ehr-connectors/export/v1';

export interface ManifestFile {
  /** File name in the export directory, e.g. `Observation.ndjson.enc`. */
  name: string;
  resourceType: string;
  /** Resources in the file. */
  count: number;
  bytes: number;
  /** Hex SHA-256 of the file as written (ciphertext). */
  sha256: string;
}

export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  jobId: string;
  tenantId: string;
  purpose: string;
  types: string[];
  since: string | null;
  created: string;
  jobKeyId: string;
  cipher: 'AES-256-GCM/chunked-v1';
  files: ManifestFile[];
  /** Signing key id (audit signing key). */
  kid: string;
}

export async function signManifest(manifest: ExportManifest, privateKey: KeyObject): Promise<string> {
  return new CompactSign(Buffer.from(canonicalize(manifest)!, 'utf8'))
    .setProtectedHeader({ alg: 'EdDSA', kid: manifest.kid, typ: MANIFEST_JWS_TYPE })
    .sign(privateKey);
}

export async function writeManifest(dir: string, manifest: ExportManifest, jws: string): Promise<void> {
  const file = path.join(dir, MANIFEST_FILE);
  await fs.writeFile(`${file}.partial`, `${JSON.stringify({ manifest, jws }, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(`${file}.partial`, file);
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface ManifestVerification {
  ok: boolean;
  /** The signed manifest, when the signature verified. */
  manifest?: ExportManifest;
  /** Each problem, naming the file (or the manifest). */
  problems: string[];
}

const SAFE_NAME = /^[A-Za-z]+\.ndjson\.enc$/;

/** Reads `manifest.json` and checks its signature against `keys` (by kid); the signed manifest or why not. */
export async function readSignedManifest(
  dir: string,
  keys: ReadonlyMap<string, KeyObject>,
): Promise<{ manifest: ExportManifest } | { problem: string }> {
  let parsed: { manifest?: unknown; jws?: unknown };
  try {
    parsed = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as typeof parsed;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { problem: `${MANIFEST_FILE}: ${missing ? 'missing' : 'not valid JSON (bad manifest)'}` };
  }
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.jws !== 'string')
    return { problem: `${MANIFEST_FILE}: bad manifest (no signature)` };
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(parsed.jws);
    if (header.alg !== 'EdDSA' || header.typ !== MANIFEST_JWS_TYPE)
      return { problem: `${MANIFEST_FILE}: bad manifest (not an export manifest signature)` };
    kid = header.kid;
  } catch {
    return { problem: `${MANIFEST_FILE}: bad manifest (malformed signature)` };
  }
  const key = kid === undefined ? undefined : keys.get(kid);
  if (!key) return { problem: `${MANIFEST_FILE}: signed by an unknown key ${JSON.stringify(kid ?? null)}` };
  let signed: ExportManifest;
  try {
    const verified = await compactVerify(parsed.jws, key, { algorithms: ['EdDSA'] });
    signed = JSON.parse(Buffer.from(verified.payload).toString('utf8')) as ExportManifest;
  } catch {
    return { problem: `${MANIFEST_FILE}: signature does not verify (bad manifest)` };
  }
  if (signed.format !== EXPORT_FORMAT || !Array.isArray(signed.files) || signed.kid !== kid)
    return { problem: `${MANIFEST_FILE}: bad manifest (not an export manifest)` };
  if (canonicalize(parsed.manifest) !== canonicalize(signed))
    return { problem: `${MANIFEST_FILE}: the manifest differs from what was signed (bad manifest)` };
  return { manifest: signed };
}

/** The signature, then every file's size and SHA-256 against the signed manifest; files not listed are named. */
export async function verifyExportDirectory(
  dir: string,
  keys: ReadonlyMap<string, KeyObject>,
): Promise<ManifestVerification> {
  const read = await readSignedManifest(dir, keys);
  if ('problem' in read) return { ok: false, problems: [read.problem] };
  const { manifest } = read;
  const problems: string[] = [];
  for (const f of manifest.files) {
    if (!SAFE_NAME.test(f.name)) {
      problems.push(`${MANIFEST_FILE}: names an unexpected file`);
      continue;
    }
    const file = path.join(dir, f.name);
    let digest: string;
    try {
      digest = await sha256OfFile(file);
    } catch {
      problems.push(`${f.name}: missing`);
      continue;
    }
    if (digest !== f.sha256) problems.push(`${f.name}: SHA-256 does not match the manifest`);
  }
  const listed = new Set([MANIFEST_FILE, ...manifest.files.map((f) => f.name)]);
  for (const name of (await fs.readdir(dir)).sort())
    if (!listed.has(name)) problems.push(`${name}: not in the manifest`);
  return { ok: problems.length === 0, manifest, problems };
}
