/**
 * Confusable skeletons (Unicode Technical Standard #39, section 4): two strings that look alike map
 * to the same skeleton, so `jоhn` with a Cyrillic `о` and `john` are one name. The prototype table is
 * Unicode's confusables.txt, which reaches the domain as an argument (security/confusables.ts loads
 * it from a package), keeping this layer free of I/O and packages.
 */

/** The prototype of one code point from confusables.txt, or undefined when it has none. */
export type PrototypeLookup = (codePoint: string) => string | undefined;

/**
 * skeleton(X) = NFD(map each code point of NFD(X) to its prototype), with one narrowing: ASCII code
 * points are kept. UTS #39 also maps ASCII onto ASCII (`m` → `rn`, `1` → `l`, `0` → `O`), but
 * `modern@` and `rnodern@`, `bill1@` and `billl@` are mailboxes different people really hold; a
 * disguise needs a character from outside ASCII, and only those are folded.
 */
export function confusableSkeleton(text: string, prototypeOf: PrototypeLookup): string {
  let out = '';
  for (const cp of text.normalize('NFD')) {
    out += (cp.codePointAt(0) as number) < 0x80 ? cp : (prototypeOf(cp) ?? cp);
  }
  return out.normalize('NFD');
}
