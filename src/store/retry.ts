/**
 * PostgreSQL aborts one side of a deadlock (40P01) or a serialization conflict (40001) and undoes all
 * of its work. The redeem, rollback and conversion calls are one statement each, so running the
 * statement again is exactly a retry of the whole operation, and its idempotency key keeps a retry of
 * one that did commit from doing anything twice.
 */
const RETRYABLE = new Set(['40P01', '40001']);

export async function retryOnConflict<T>(run: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt >= attempts || typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
      // A short, jittered pause lets the other transaction finish first.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
    }
  }
}
