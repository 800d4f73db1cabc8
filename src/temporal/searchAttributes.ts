import type { ConnectionLike } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { CDF_SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';

const IndexedValueType = temporal.api.enums.v1.IndexedValueType;
const TYPES: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
};
const typeName = (type: string) => (type === 'INT' ? 'Int' : 'Keyword');

/**
 * The pipeline's search attributes are missing from the namespace and could not be added (on
 * Temporal Cloud, or without operator rights). Without them every source workflow start is refused
 * and every fan-in's workflow task fails, so nothing starts until they exist.
 */
export class SearchAttributesMissingError extends Error {
  override readonly name = 'SearchAttributesMissingError';
  constructor(
    readonly namespace: string,
    readonly missing: { name: string; type: string }[],
    cause: unknown,
  ) {
    const create = missing.map((key) => `temporal operator search-attribute create --namespace ${namespace} --name ${key.name} --type ${typeName(key.type)}`);
    super(
      `namespace ${namespace} lacks the search attributes ${missing.map((key) => `${key.name} (${typeName(key.type)})`).join(', ')} ` +
        `and adding them was refused (${(cause as Error)?.message ?? String(cause)}). Register them once with an operator's rights: ${create.join('; ')} ` +
        '(on Temporal Cloud: tcld namespace search-attributes add, or the Cloud UI), then start again',
      { cause },
    );
  }
}

/** `--search-attribute NAME=Type` flags for `temporal server start-dev`. */
export function searchAttributeFlags(): string[] {
  return CDF_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${typeName(key.type)}`]);
}

async function missingSearchAttributes(connection: Pick<ConnectionLike, 'operatorService'>, namespace: string) {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const present = new Set(Object.keys(existing.customAttributes ?? {}));
  return CDF_SEARCH_ATTRIBUTES.filter((key) => !present.has(key.name));
}

/**
 * Registers the pipeline's search attributes on the namespace where missing; returns the names it
 * added. Idempotent, and safe when two processes do it at once (a refusal is checked against a
 * second look before it counts).
 */
export async function ensureSearchAttributes(connection: Pick<ConnectionLike, 'operatorService'>, namespace: string): Promise<string[]> {
  const missing = await missingSearchAttributes(connection, namespace);
  if (missing.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, TYPES[key.type]!])),
    });
  } catch (error) {
    const stillMissing = await missingSearchAttributes(connection, namespace).catch(() => missing);
    if (stillMissing.length > 0) throw new SearchAttributesMissingError(namespace, stillMissing, error);
  }
  return missing.map((key) => key.name);
}
