import type { Confidence, Fact } from './types.js';

/** Shorthand for profile files: `fact(value, 'source', 'M')`. */
export function fact<T>(value: T, source: string, confidence: Confidence): Fact<T> {
  return { value, source, confidence };
}

/** A connector choice where the vendor publishes nothing: low confidence by definition. */
export function assumed<T>(value: T, why: string): Fact<T> {
  return { value, source: `connector default (${why})`, confidence: 'L' };
}
