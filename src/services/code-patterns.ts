import { type CodePattern, hasPatternShape, hasValidCheckCharacter } from '../domain/codes.js';

/**
 * The shapes of every generated batch, held in memory so that a code with a batch's shape but a
 * wrong check symbol is refused without a database read. A node that has not yet heard of a new batch
 * only loses that shortcut (it reads the database), never a valid code.
 */
export class PatternIndex {
  private patterns: CodePattern[] = [];

  constructor(private readonly load: () => Promise<CodePattern[]>) {}

  async refresh(): Promise<void> {
    this.patterns = await this.load();
  }

  add(pattern: CodePattern): void {
    if (!this.patterns.some((p) => p.prefix === pattern.prefix && p.randomLength === pattern.randomLength)) {
      this.patterns = [...this.patterns, pattern];
    }
  }

  /**
   * False when the code has the shape of some batch but fails that batch's check symbol and no other
   * batch's. Codes of any other shape (public and imported codes) are left to the database.
   */
  mayExist(normalized: string): boolean {
    let shaped = false;
    for (const p of this.patterns) {
      if (!hasPatternShape(normalized, p)) continue;
      if (hasValidCheckCharacter(normalized.slice(p.prefix.length))) return true;
      shaped = true;
    }
    return !shaped;
  }
}
