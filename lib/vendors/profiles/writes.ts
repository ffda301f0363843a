/**
 * How each vendor makes a write safe to resend (write-back, lib/writeback/sender.ts), as facts with their
 * source and confidence like the rest of the profile. The FHIR R4 RESTful API defines versioned update
 * (`If-Match: W/"n"`, 412 on a stale version) and conditional create (`If-None-Exist`, 200 with the match, 412 on
 * several); an `Idempotency-Key` header is not FHIR — only servers that say so honour it.
 *
 * The connector sends every write with all three guards it can: If-Match on an update, the change's key as
 * Idempotency-Key, and — where the vendor honours conditional create — our identifier with If-None-Exist on a
 * create. What the vendor does not honour it ignores; a create at a vendor that honours neither would not be
 * safe to resend, and write-back refuses to send one (WRITE_UNSAFE_CREATE).
 */
import { assumed, fact } from './fact.js';
import type { Fact, VendorId } from './types.js';

export interface WriteSupport {
  /** `If-None-Exist` honoured on create. */
  conditionalCreate: boolean;
  /** `Idempotency-Key` honoured: a resend with the same key returns the first answer. */
  idempotencyKey: boolean;
  /** `If-Match` honoured on update (412 on a stale version). */
  ifMatch: boolean;
}

const SPEC = 'FHIR R4 RESTful API (hl7.org/fhir/R4/http.html: update with If-Match, conditional create)';
const NOT_PUBLISHED = `write guards not published; ${SPEC} assumed, verify against the vendor before enabling writes`;

export const WRITE_SUPPORT: Readonly<Record<VendorId, Fact<WriteSupport>>> = {
  epic: assumed({ conditionalCreate: true, idempotencyKey: false, ifMatch: true }, NOT_PUBLISHED),
  'oracle-health': assumed({ conditionalCreate: true, idempotencyKey: false, ifMatch: true }, NOT_PUBLISHED),
  athenahealth: assumed({ conditionalCreate: true, idempotencyKey: false, ifMatch: true }, NOT_PUBLISHED),
  meditech: assumed({ conditionalCreate: true, idempotencyKey: false, ifMatch: true }, NOT_PUBLISHED),
  eclinicalworks: assumed({ conditionalCreate: true, idempotencyKey: false, ifMatch: true }, NOT_PUBLISHED),
  nextgen: assumed({ conditionalCreate: true, idempotencyKey: false, ifMatch: true }, NOT_PUBLISHED),
  'fhir-server': fact(
    { conditionalCreate: true, idempotencyKey: false, ifMatch: true },
    `${SPEC}; HAPI FHIR JPA honours both, answering a stale If-Match with 409 rather than 412 ` +
      '(test/interop/hapi-write-back.test.ts)',
    'M',
  ),
  sandbox: fact(
    { conditionalCreate: true, idempotencyKey: true, ifMatch: true },
    'sandbox/ (this repository): sandbox/write-routes.ts',
    'H',
  ),
};

export function writeSupportFor(vendor: VendorId): WriteSupport {
  return WRITE_SUPPORT[vendor].value;
}
