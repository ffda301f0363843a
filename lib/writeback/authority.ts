/**
 * Which side owns which elements of a resource, per integration and type: the write policy the gateway enforces
 * on local changes, and the authority reconciliation applies to differences it finds. Elements are the R4
 * top-level element names (choice types by their concrete name, e.g. `occurrenceDateTime`), as minimisation
 * uses them.
 *
 *   remote      the EHR owns it: a local change to it is refused; reconciliation takes the vendor's value
 *   local       the organisation's systems own it: a local change is accepted and written back; reconciliation
 *               sends the local value back when the vendor's differs
 *   shared      either side may change it: reconciliation takes the side that changed since the last agreed
 *               state, and opens a conflict for a person when both did
 *   local-only  kept here, never written back (notes): a local change is accepted and stored, never sent;
 *               reconciliation ignores differences
 *
 * `id`, `meta`, `text` and `resourceType` are never owned by either side: the vendor assigns them.
 * Built-in defaults below; a row in `write_policies` replaces a type's default for one integration.
 */
import type { ResourceType } from '../domain.js';
import type { Queryable } from '../store/pool.js';

export const AUTHORITIES = ['remote', 'local', 'shared', 'local-only'] as const;
export type Authority = (typeof AUTHORITIES)[number];

export interface TypeWritePolicy {
  /** May the organisation's systems create resources of this type at the vendor? */
  create: boolean;
  /** May they change existing ones (subject to the element authorities)? */
  update: boolean;
  /** Elements not listed here are `remote`. */
  elements: Readonly<Record<string, Authority>>;
}

/** Elements the vendor assigns; a change to one is not a change of content. */
export const VENDOR_ASSIGNED_ELEMENTS: readonly string[] = ['resourceType', 'id', 'meta', 'text'];

/**
 * The defaults: demographics belong to the EHR (a Patient's telecom is the organisation's to update), the
 * scheduling system owns appointment status, orders are placed and cancelled locally, notes never leave.
 * Types not listed are read-only (no create, no update).
 */
export const DEFAULT_WRITE_POLICIES: Readonly<Partial<Record<ResourceType, TypeWritePolicy>>> = {
  Patient: { create: false, update: true, elements: { telecom: 'local' } },
  Appointment: {
    create: true,
    update: true,
    elements: {
      status: 'local',
      cancelationReason: 'local',
      start: 'shared',
      end: 'shared',
      minutesDuration: 'shared',
      participant: 'shared',
      comment: 'local-only',
      patientInstruction: 'local-only',
    },
  },
  ServiceRequest: {
    create: true,
    update: true,
    elements: {
      status: 'local',
      intent: 'local',
      priority: 'shared',
      occurrenceDateTime: 'shared',
      occurrencePeriod: 'shared',
      note: 'local-only',
    },
  },
};

const READ_ONLY: TypeWritePolicy = { create: false, update: false, elements: {} };

/** The authority of one element under a policy (unlisted elements are the EHR's). */
export function elementAuthority(policy: TypeWritePolicy, element: string): Authority {
  return policy.elements[element] ?? 'remote';
}

export function defaultWritePolicy(type: ResourceType): TypeWritePolicy {
  return DEFAULT_WRITE_POLICIES[type] ?? READ_ONLY;
}

/** The integration's policy for a type: its stored override, else the default. */
export async function writePolicyFor(
  db: Queryable,
  scope: { tenantId: string; integrationId: string },
  type: ResourceType,
): Promise<TypeWritePolicy> {
  const res = await db.query<{ policy: TypeWritePolicy }>(
    'SELECT policy FROM write_policies WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3',
    [scope.tenantId, scope.integrationId, type],
  );
  return res.rows[0]?.policy ?? defaultWritePolicy(type);
}

/**
 * Of the given types, those an integration writes back: its policy in force (stored override, else the built-in
 * default) allows create or update. The vendor door's write token asks for these types' write scopes
 * (lib/vendors/client-auth.ts); read tokens never do.
 */
export async function writableTypes(
  db: Queryable,
  scope: { tenantId: string; integrationId: string },
  types: readonly ResourceType[],
): Promise<ResourceType[]> {
  const res = await db.query<{ resource_type: string; policy: TypeWritePolicy }>(
    'SELECT resource_type, policy FROM write_policies WHERE tenant_id = $1 AND integration_id = $2',
    [scope.tenantId, scope.integrationId],
  );
  const stored = new Map(res.rows.map((r) => [r.resource_type, r.policy]));
  return types.filter((t) => {
    const policy = stored.get(t) ?? defaultWritePolicy(t);
    return policy.create || policy.update;
  });
}
