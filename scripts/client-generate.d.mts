/** Types of client-generate.mjs for the test that checks the generated client against the document. */
export declare const SCHEMA_FILE: string;
export declare function schemaSource(document: unknown): Promise<string>;
