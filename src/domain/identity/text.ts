/** Shared by every identifier kind: the fixed-point normalization and the characters never accepted. */

/**
 * Applies `step` until its output stops changing. Unicode steps (NFKC, case mapping, mark removal)
 * can expose a new composable sequence once punctuation between two code points is gone; iterating
 * makes the returned value a true fixed point, so stored values are stable under re-normalization.
 * Hostile input that still moves after a few rounds is refused rather than stored in a shifting form.
 */
export function toFixedPoint(input: string, step: (s: string) => string | null): string | null {
  let current = step(input);
  for (let round = 0; round < 4 && current !== null; round++) {
    const next = step(current);
    if (next === current) return current;
    current = next;
  }
  return null;
}

export const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;
