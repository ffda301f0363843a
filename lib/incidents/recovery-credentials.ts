/**
 * What recovery needs from the commander, checked before an approval is recorded. A revoked
 * private_key_jwt integration gets a new signing key of our own making, but a client secret or a
 * client certificate is issued (or signed) by the vendor: the commander rotates it there and names
 * the new one by reference in the approval. An approval that lacks one, repeats the revoked
 * reference, or names something unreadable is refused with every problem named, so recovery never
 * fails after approval for want of a credential.
 */
import { checkSecretRef } from '../config/secrets.js';
import type { StoredSecretPolicy } from '../config/stored-secret-refs.js';
import { assertStoredSecretRefAllowed } from '../config/stored-secret-refs.js';
import { ID_PATTERN } from '../domain.js';
import { EhrError } from '../errors/index.js';
import type { Queryable } from '../store/pool.js';
import { getIntegration } from '../integrations/repository.js';
import { readStoredSecretPolicy } from '../store/secret-roots.js';
import type { Integration } from '../integrations/repository.js';
import { loadVendorTls } from '../vendors/tls-options.js';
import type { ScopedIntegration } from './scope.js';

/** The rotated credential of one integration, by reference (never the secret itself). */
export interface ReplacementCredentials {
  clientSecretRef?: string;
  tlsCertRef?: string;
  tlsKeyRef?: string;
}

/** Per integration id. */
export type RecoveryCredentials = Record<string, ReplacementCredentials>;

const REF_FIELDS = ['clientSecretRef', 'tlsCertRef', 'tlsKeyRef'] as const;
const FLAG: Record<(typeof REF_FIELDS)[number], string> = {
  clientSecretRef: '--client-secret-ref',
  tlsCertRef: '--tls-cert-ref',
  tlsKeyRef: '--tls-key-ref',
};

/**
 * The check every replacement reference passes before it is accepted: what registration and restore
 * demand of a stored reference (under a secret root, never the KEK directory or /proc; see
 * lib/config/stored-secret-refs.ts), then well formed, readable, and a secret file 0600 (`shareable`
 * for a certificate). Restore checks again, so this only moves the refusal before the approval.
 */
export function checkReplacementRef(ref: string, field: string, policy: StoredSecretPolicy, shareable = false): void {
  assertStoredSecretRefAllowed(ref, { field, policy });
  checkSecretRef(ref, { field, shareable });
}

/** Integrations the incident revoked and that are still revoked: the ones recovery will restore. */
export function toRestore(affected: ScopedIntegration[], current: Map<string, Integration>): Integration[] {
  return affected
    .filter((a) => a.status === 'active')
    .map((a) => current.get(a.integrationId))
    .filter((i): i is Integration => i?.status === 'revoked');
}

const message = (err: unknown): string => (err instanceof EhrError ? err.message : 'could not be checked');

/**
 * Every problem with the credentials given for recovering `affected` (empty: acceptable). Problems
 * name the integration and the option, never a secret.
 */
export async function recoveryCredentialProblems(
  db: Queryable,
  affected: ScopedIntegration[],
  given: RecoveryCredentials,
): Promise<string[]> {
  const current = new Map<string, Integration>();
  for (const a of affected) current.set(a.integrationId, await getIntegration(db, a.integrationId));
  const restoring = toRestore(affected, current);
  const ids = new Set(restoring.map((i) => i.id));
  const problems: string[] = [];
  for (const id of Object.keys(given)) {
    if (!ID_PATTERN.test(id) || !ids.has(id)) {
      problems.push(`${id.slice(0, 63)}: not an integration this incident restores (${[...ids].join(', ') || 'none'})`);
    }
  }
  const policy = restoring.length > 0 ? await readStoredSecretPolicy(db) : undefined;
  for (const i of restoring) problems.push(...(await problemsOf(i, given[i.id] ?? {}, policy!)));
  return problems;
}

async function problemsOf(i: Integration, c: ReplacementCredentials, policy: StoredSecretPolicy): Promise<string[]> {
  const named = REF_FIELDS.filter((f) => c[f] !== undefined);
  const extra = (allowed: readonly string[]): string[] =>
    named
      .filter((f) => !allowed.includes(f))
      .map((f) => `${i.id}: ${FLAG[f]} does not apply (it authenticates with ${i.authMethod})`);
  switch (i.authMethod) {
    case 'private_key_jwt':
    case 'none':
      return extra([]);
    case 'client_secret_basic':
    case 'client_secret_post': {
      const problems = extra(['clientSecretRef']);
      const ref = c.clientSecretRef;
      if (!ref)
        return [
          ...problems,
          `${i.id} uses ${i.authMethod}: ` +
            `rotate the secret at the vendor and give the new one (--client-secret-ref ${i.id}=file:…)`,
        ];
      if (ref === i.clientSecretRef)
        return [...problems, `${i.id}: --client-secret-ref names the revoked secret; give the rotated one`];
      try {
        checkReplacementRef(ref, `--client-secret-ref ${i.id}`, policy);
      } catch (err) {
        problems.push(`${i.id}: ${message(err)}`);
      }
      return problems;
    }
    case 'tls_client_auth': {
      const problems = extra(['tlsCertRef', 'tlsKeyRef']);
      const { tlsCertRef: cert, tlsKeyRef: key } = c;
      if (!cert || !key)
        return [
          ...problems,
          `${i.id} uses tls_client_auth: ` +
            `give the new client certificate and key (--tls-cert-ref ${i.id}=… --tls-key-ref ${i.id}=…)`,
        ];
      if (cert === i.tlsRefs?.clientCertRef || key === i.tlsRefs?.clientKeyRef) {
        return [...problems, `${i.id}: the certificate and key must both differ from the revoked ones`];
      }
      try {
        checkReplacementRef(cert, `--tls-cert-ref ${i.id}`, policy, true);
        checkReplacementRef(key, `--tls-key-ref ${i.id}`, policy);
        // Parses both and checks the key belongs to the certificate, as restore will.
        await loadVendorTls({ ...i.tlsRefs, clientCertRef: cert, clientKeyRef: key });
      } catch (err) {
        problems.push(`${i.id}: ${message(err)}`);
      }
      return problems;
    }
  }
}
