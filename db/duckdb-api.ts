/**
 * DuckDB's Node packages, loaded with require(). Both are CommonJS: importing them as ES modules makes Node scan
 * every file of @duckdb/node-api for its named exports at each start, ~90 ms CPU of every command. Take DuckDB's
 * values (classes, type constants, enums, bindings) from here; `import type` from '@duckdb/node-api' costs nothing.
 */
import { createRequire } from 'node:module';
import type * as Api from '@duckdb/node-api';
import type * as Bindings from '@duckdb/node-bindings';

const require = createRequire(import.meta.url);
const api = require('@duckdb/node-api') as typeof Api;

/** The C API of @duckdb/node-bindings (what `import bindings from '@duckdb/node-bindings'` gives). */
export const bindings = require('@duckdb/node-bindings') as typeof Bindings;

export const DuckDBInstance = api.DuckDBInstance;
export type DuckDBInstance = Api.DuckDBInstance;
export const DuckDBConnection = api.DuckDBConnection;
export type DuckDBConnection = Api.DuckDBConnection;
export const DuckDBDataChunk = api.DuckDBDataChunk;
export type DuckDBDataChunk = Api.DuckDBDataChunk;
export const DuckDBTypeId = api.DuckDBTypeId;
export type DuckDBTypeId = Api.DuckDBTypeId;
export const { BIGINT, BOOLEAN, DOUBLE, ENUM, INTEGER, SMALLINT, UBIGINT, VARCHAR, listValue } = api;
export const { DuckDBArrayValue, DuckDBDecimalValue, DuckDBListValue, DuckDBMapValue, DuckDBStructValue, DuckDBTimestampValue } = api;
export type DuckDBArrayValue = Api.DuckDBArrayValue;
export type DuckDBDecimalValue = Api.DuckDBDecimalValue;
export type DuckDBListValue = Api.DuckDBListValue;
export type DuckDBMapValue = Api.DuckDBMapValue;
export type DuckDBStructValue = Api.DuckDBStructValue;
export type DuckDBTimestampValue = Api.DuckDBTimestampValue;
