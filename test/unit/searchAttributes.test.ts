import { ensureSearchAttributes, SearchAttributesMissingError } from '../../src/temporal/searchAttributes';
import { CDF_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes';

/**
 * The refusals a real server gives cannot be provoked on the dev server (it lets anyone add search
 * attributes), so the operator service is stood in for here with the answers the server documents:
 * PERMISSION_DENIED without operator rights, ALREADY_EXISTS when another worker added them first.
 */
function operatorService(registered: Set<string>, add: (names: string[]) => void) {
  return {
    operatorService: {
      listSearchAttributes: async () => ({ customAttributes: Object.fromEntries([...registered].map((name) => [name, 1])) }),
      addSearchAttributes: async (request: { searchAttributes: Record<string, number> }) => add(Object.keys(request.searchAttributes)),
    },
  } as unknown as Parameters<typeof ensureSearchAttributes>[0];
}
const ALL = CDF_SEARCH_ATTRIBUTES.map((key) => key.name);

describe('ensureSearchAttributes', () => {
  it('adds only the missing ones and returns their names', async () => {
    const registered = new Set(['CdfSource']);
    const added = await ensureSearchAttributes(operatorService(registered, (names) => names.forEach((n) => registered.add(n))), 'default');
    expect(added).toEqual(ALL.filter((name) => name !== 'CdfSource'));
    expect([...registered].sort()).toEqual([...ALL].sort());
  });

  it('takes a refusal as success when another process registered them meanwhile', async () => {
    const registered = new Set<string>();
    const racing = operatorService(registered, () => {
      ALL.forEach((n) => registered.add(n));
      throw Object.assign(new Error('6 ALREADY_EXISTS: search attribute CdfSource already exists'), { code: 6 });
    });
    await expect(ensureSearchAttributes(racing, 'default')).resolves.toEqual(ALL);
  });

  it('refuses with the names, their types and the commands that register them when adding is denied', async () => {
    const denied = operatorService(new Set(['CdfSource', 'CdfState']), () => {
      throw Object.assign(new Error('7 PERMISSION_DENIED: Request unauthorized.'), { code: 7 });
    });
    const error = await ensureSearchAttributes(denied, 'prod').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SearchAttributesMissingError);
    const message = (error as Error).message;
    expect(message).toContain('namespace prod lacks the search attributes CdfLastVersion (Int), CdfFanInOutcome (Keyword), CdfDispatchedIds (Int), CdfParkedBatches (Int)');
    expect(message).toContain('PERMISSION_DENIED: Request unauthorized.');
    expect(message).toContain('temporal operator search-attribute create --namespace prod --name CdfLastVersion --type Int');
    expect(message).toContain('tcld namespace search-attributes add');
  });
});
