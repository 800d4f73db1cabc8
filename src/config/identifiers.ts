/**
 * Identifier allow-list. Every table and column name that reaches SQL passes this pattern first
 * and is then quoted by the dialect's `quoteIdent`, so a name can never close a quote or start a
 * new statement.
 */
export const IDENTIFIER_PART = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** A name a person chose for a source: used in workflow ids and as a registry value. */
export const SOURCE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

export interface QualifiedName {
  /** 1 to 3 validated parts: [catalog.][schema.]table */
  readonly parts: readonly string[];
  readonly text: string;
}

export function isQualifiedName(text: string): boolean {
  const parts = text.split('.');
  return parts.length >= 1 && parts.length <= 3 && parts.every((p) => IDENTIFIER_PART.test(p));
}

export function parseQualifiedName(text: string): QualifiedName {
  if (!isQualifiedName(text)) {
    throw new Error(
      `"${text}" is not a valid table name: use 1 to 3 dot-separated parts of letters, digits and underscores`,
    );
  }
  return { parts: text.split('.'), text };
}
