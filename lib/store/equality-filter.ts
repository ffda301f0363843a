/**
 * A listing's optional `column = value` filters as a WHERE clause with numbered parameters (undefined values are
 * left out), and the parameters; the caller appends its own (e.g. the LIMIT) after them.
 */
export function equalityFilter(filters: Record<string, unknown>): { where: string; params: unknown[] } {
  const params: unknown[] = [];
  const terms: string[] = [];
  for (const [column, value] of Object.entries(filters)) {
    if (value === undefined) continue;
    params.push(value);
    terms.push(`${column} = $${params.length}`);
  }
  return { where: terms.length > 0 ? `WHERE ${terms.join(' AND ')}` : '', params };
}
