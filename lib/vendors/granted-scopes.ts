/**
 * Whether a token's granted scope lets us read a resource type: SMART v1 (`system/Observation.read`,
 * `system/*.read`) and v2 (`system/Observation.rs`, `system/*.cruds`) both count when they include read (`r` or
 * `read`); a vendor that returns no scope at all granted what was asked (RFC 6749 §5.1), so nothing is refused.
 */
export function typesNotGranted<T extends string>(scope: string, types: readonly T[]): T[] {
  const granted = scope.split(/\s+/).filter(Boolean);
  if (granted.length === 0) return [];
  const reads = (type: T) =>
    granted.some((s) => {
      const m = /^system\/([A-Za-z*]+)\.([a-z*]+)$/.exec(s);
      if (!m || (m[1] !== type && m[1] !== '*')) return false;
      const access = m[2]!;
      return access === 'read' || access === '*' || /^c?r/.test(access);
    });
  return types.filter((t) => !reads(t));
}
