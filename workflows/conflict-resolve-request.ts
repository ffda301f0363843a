/**
 * The `resolve` update's argument and its check, shared by the conflictResolution workflow's validator, the
 * resolution activity (which checks again before it changes anything) and ehrctl (which parses `--fields`). Ids,
 * element paths and sides only — never values. Pure: no imports, deterministic.
 */

export type ResolutionSide = 'local' | 'remote';

/** Take one side for every disputed element, or decide element by element (every element, no other). */
export type ResolveRequest =
  { take: ResolutionSide; by: string } | { fields: Record<string, ResolutionSide>; by: string };

/** What the check needs to know of the conflict (loaded by the workflow's first activity). */
export interface ResolvableConflict {
  elements: readonly string[];
  reason: string;
}

export type ResolveCheck = { ok: true; decisions: Record<string, ResolutionSide> } | { ok: false; problem: string };

/** Who resolves: an identity, as the break-glass reviewer is given (letters, digits, @._:+-). */
const ACTOR = /^[A-Za-z0-9@._:+-]{1,128}$/;
/** Reasons where the vendor has no copy of the record: it is kept or dropped whole. */
const WHOLE_RECORD_REASONS: ReadonlySet<string> = new Set(['deleted-remote', 'missing-remote']);

function isSide(value: unknown): value is ResolutionSide {
  return value === 'local' || value === 'remote';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks a resolve request against the conflict; on success, the side of every disputed element. */
export function checkResolveRequest(request: unknown, conflict: ResolvableConflict): ResolveCheck {
  const fail = (problem: string): ResolveCheck => ({ ok: false, problem });
  if (!isPlainObject(request)) return fail('expected { take } or { fields } with the resolver (by)');
  const keys = Object.keys(request).sort();
  if (typeof request.by !== 'string' || !ACTOR.test(request.by))
    return fail('by: expected the resolver identity (letters, digits, @._:+-)');
  const hasTake = 'take' in request;
  const hasFields = 'fields' in request;
  if (hasTake === hasFields) return fail('give exactly one of take (local|remote) or fields (element -> local|remote)');
  const extra = keys.filter((k) => k !== 'by' && k !== 'take' && k !== 'fields');
  if (extra.length > 0) return fail(`unexpected argument ${extra[0]}`);
  const decisions: Record<string, ResolutionSide> = {};
  if (hasTake) {
    if (!isSide(request.take)) return fail('take: local or remote');
    for (const element of conflict.elements) decisions[element] = request.take;
    return { ok: true, decisions };
  }
  const fields = request.fields;
  if (!isPlainObject(fields)) return fail('fields: expected element -> local|remote');
  const disputed = new Set(conflict.elements);
  const chosen = new Map<string, ResolutionSide>();
  for (const [element, side] of Object.entries(fields)) {
    if (!disputed.has(element))
      return fail(
        `fields: ${element.slice(0, 64)} is not an element of this conflict (${conflict.elements.join(', ')})`,
      );
    if (!isSide(side)) return fail(`fields: ${element} must be local or remote`);
    chosen.set(element, side);
  }
  const undecided = conflict.elements.filter((e) => !chosen.has(e));
  if (undecided.length > 0) return fail(`fields: every element must be decided; undecided: ${undecided.join(', ')}`);
  for (const element of conflict.elements) decisions[element] = chosen.get(element)!;
  if (WHOLE_RECORD_REASONS.has(conflict.reason) && new Set(Object.values(decisions)).size > 1)
    return fail(`a ${conflict.reason} conflict is decided for the whole record: take local or take remote`);
  return { ok: true, decisions };
}

/** Parses ehrctl's `--fields a=local,b=remote` (checked against the conflict by the workflow). */
export function parseFieldsOption(value: string): Record<string, ResolutionSide> | string {
  const seen = new Map<string, ResolutionSide>();
  for (const part of value.split(',')) {
    const m = /^\s*([A-Za-z][A-Za-z0-9_.[\]-]*)\s*=\s*(local|remote)\s*$/.exec(part);
    if (!m) return `expected path=local|remote[,path=local|remote…], got ${JSON.stringify(part.slice(0, 80))}`;
    if (seen.has(m[1]!)) return `${m[1]} is given twice`;
    seen.set(m[1]!, m[2] as ResolutionSide);
  }
  return Object.fromEntries(seen);
}
