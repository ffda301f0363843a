/** Leak scanning helpers: turn a history into searchable text (payloads decoded) and search it. */
import type { temporal } from '@temporalio/proto';

/** The history as JSON plus every payload's data decoded from base64, so encoded PHI is visible. */
export function historyText(history: temporal.api.history.v1.IHistory): string {
  const decoded: string[] = [];
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object') return;
    if (value instanceof Uint8Array) {
      decoded.push(Buffer.from(value).toString('utf8'));
      return;
    }
    for (const child of Object.values(value as Record<string, unknown>)) visit(child);
  };
  visit(history);
  return `${JSON.stringify(history)}\n${decoded.join('\n')}`;
}

export function findLeaks(text: string, identifiers: readonly string[]): string[] {
  return identifiers.filter((s) => s.length >= 6 && text.includes(s));
}
