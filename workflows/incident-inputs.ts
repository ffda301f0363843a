/**
 * Checks on what the commander sends the incident workflow (update validators). Everything sent lands
 * in the history and the incident report, so free text is printable ASCII (no PHI-shaped data) and
 * references are checked for shape here, for what they name by an activity before approval counts.
 */
import { ApplicationFailure } from '@temporalio/workflow';

/** Words only: the commander's text lands in histories and reports, so it must not carry PHI-shaped data. */
export const TEXT = /^[\x20-\x7e]{1,500}$/;
export const ACTOR = /^[A-Za-z0-9@._:+-]{1,128}$/;
/** A secret reference (file:/env:/manager scheme): printable, no spaces; what it names is checked by an activity. */
const REF = /^[\x21-\x7e]{1,1024}$/;
const CREDENTIAL_FIELDS = ['clientSecretRef', 'tlsCertRef', 'tlsKeyRef'];

export function checkCredentialsShape(credentials: unknown): void {
  if (credentials === undefined) return;
  if (credentials === null || typeof credentials !== 'object' || Array.isArray(credentials))
    invalid('credentials: expected { <integration id>: { clientSecretRef?, tlsCertRef?, tlsKeyRef? } }');
  const entries = Object.entries(credentials as Record<string, unknown>);
  if (entries.length > 1000) invalid('credentials: at most 1000 integrations');
  for (const [id, refs] of entries) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id))
      invalid(`credentials: ${JSON.stringify(id.slice(0, 64))} is not an integration id`);
    if (refs === null || typeof refs !== 'object' || Array.isArray(refs))
      invalid(`credentials.${id}: expected an object of references`);
    for (const [field, ref] of Object.entries(refs as Record<string, unknown>)) {
      if (!CREDENTIAL_FIELDS.includes(field))
        invalid(`credentials.${id}.${field.slice(0, 40)}: unknown (${CREDENTIAL_FIELDS.join(', ')})`);
      if (typeof ref !== 'string' || !REF.test(ref))
        invalid(`credentials.${id}.${field}: a secret reference (file:<path>, env:<VAR>)`);
    }
  }
}

export function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'INVALID_ARGUMENT');
}
