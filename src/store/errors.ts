/**
 * Failures the store reports as values of its own: the services translate them into the API's
 * error codes. The store never speaks HTTP.
 */

/** Inserted codes would pass for a generated batch's codes while failing its check symbol. */
export class CodeShapeConflictError extends Error {
  override name = 'CodeShapeConflictError';
  constructor(readonly codes: string[]) {
    super('a code has the prefix and length of a generated batch');
  }
}
