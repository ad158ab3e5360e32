/**
 * Calls of the database functions (sql/functions/*.sql) by named arguments, typed from one
 * declaration per function: its parameters in their SQL names (without the `p_` prefix) and SQL
 * types. The statement text is built once, so each stays one prepared statement per connection,
 * and test/store/sql-functions.test.ts holds every declaration equal to the function's signature in
 * the database.
 */

type SqlType = 'text' | 'integer' | 'bigint' | 'boolean' | 'timestamptz' | 'date' | 'jsonb' | 'text[]';

/** The JavaScript value sent for each SQL type (jsonb as its JSON text, instants as ISO text). */
interface JsOf {
  text: string;
  integer: number;
  bigint: number;
  boolean: boolean;
  timestamptz: string;
  date: string;
  jsonb: string;
  'text[]': string[];
}

/** A parameter's SQL type; `?` marks one that may be NULL. */
type Param = SqlType | `${SqlType}?`;
type JsOfParam<P extends Param> = P extends `${infer T extends SqlType}?`
  ? JsOf[T] | null
  : JsOf[P & SqlType];

export type ArgsOf<S extends Record<string, Param>> = { [K in keyof S]: JsOfParam<S[K]> };

export interface DbFunction<S extends Record<string, Param>> {
  name: string;
  params: S;
  /** `SELECT name(p_a => $1::text, …) AS result` */
  sql: string;
  /** The values in the order of the statement's placeholders. */
  values(args: ArgsOf<S>): unknown[];
}

export function dbFunction<const S extends Record<string, Param>>(
  name: string,
  params: S,
  options: { returnsSet?: boolean } = {},
): DbFunction<S> {
  const keys = Object.keys(params) as (keyof S & string)[];
  const list = keys
    .map((key, i) => `p_${key} => $${i + 1}::${(params[key] as string).replace('?', '')}`)
    .join(', ');
  return {
    name,
    params,
    sql: options.returnsSet ? `SELECT * FROM ${name}(${list})` : `SELECT ${name}(${list}) AS result`,
    values: (args) => keys.map((key) => args[key]),
  };
}
