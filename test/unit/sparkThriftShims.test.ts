import { parseThriftMap, sparkLiteral, withServerSideParameters } from '../support/realDelta/sparkThriftDriver';
import { DBSQLParameter, DBSQLParameterType } from '@databricks/sql';

/** The real-Delta tier's bridges to a Spark Thrift server must not invent or drop what the server sent. */
describe('the Thrift MAP text parser of the real-Delta shims', () => {
  it('reads JSON inside a value to its matching brace, whatever order its keys come in', () => {
    expect(parseThriftMap('{"properties":"{"owner":"x","delta.enableChangeDataFeed":"false"}"}')).toEqual({
      properties: '{"owner":"x","delta.enableChangeDataFeed":"false"}',
    });
  });

  it('reads null values, keys with dashes and plain values side by side', () => {
    expect(parseThriftMap('{"clusterBy":"[]","description":null,"my-prop":"x","partitionBy":"["p"]","mode":"Overwrite"}')).toEqual({
      clusterBy: '[]',
      description: null,
      'my-prop': 'x',
      partitionBy: '["p"]',
      mode: 'Overwrite',
    });
  });

  it('keeps a plain value that contains quotes and commas', () => {
    expect(parseThriftMap('{"predicate":"(p = 1) AND (q = "a,b")","mode":"Overwrite"}')).toEqual({ predicate: '(p = 1) AND (q = "a,b")', mode: 'Overwrite' });
  });

  it('reads an empty map', () => {
    expect(parseThriftMap('{}')).toEqual({});
  });
});

describe('server-side parameter binding of the real-Delta shims', () => {
  it('escapes quotes and backslashes in the statement and in string literals', () => {
    const sql = withServerSideParameters("SELECT :s AS s WHERE 'x' = 'x'", { s: new DBSQLParameter({ type: DBSQLParameterType.STRING, value: "it's \\ here" }) });
    expect(sql).toBe("EXECUTE IMMEDIATE 'SELECT :s AS s WHERE \\'x\\' = \\'x\\'' USING 'it\\'s \\\\ here' AS s");
  });

  it('writes BIGINT with an L suffix and refuses a type it has no literal for', () => {
    expect(sparkLiteral(new DBSQLParameter({ type: DBSQLParameterType.BIGINT, value: 12n }))).toBe('12L');
    expect(() => sparkLiteral(new DBSQLParameter({ type: DBSQLParameterType.DOUBLE, value: 1.5 }))).toThrow(/no literal form/);
  });
});
