import { expect } from 'vitest';

// Property-based tests' run counts: each fuzz property runs `dflt` cases in `npm test` (a few hundred: seconds), or
// EMOFUSE_FUZZ_RUNS cases for a long run (EMOFUSE_FUZZ_RUNS=10000 npx vitest run test/robustness/fuzz-readers.test.ts).

/** Cases per property: EMOFUSE_FUZZ_RUNS when set (a positive integer), else `dflt`. */
export function fuzzRuns(dflt: number): number {
  const v = process.env.EMOFUSE_FUZZ_RUNS;
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`EMOFUSE_FUZZ_RUNS must be a positive integer, got '${v}'`);
  return n;
}

/** No error message from a reader longer than this: a reader quotes a field, never a whole file or header. */
export const MAX_MESSAGE = 2000;

export type ErrorClass = new (...args: never[]) => Error;

/**
 * `read()` ends in a result `check` accepts, or in one of `errors` whose message names `file`, is at most MAX_MESSAGE
 * characters and has no stack-trace-like text; anything else fails the property with what was thrown. With
 * `maxMs`, the case (either ending) must also take less than that: nothing loops on a declared size.
 */
export function readerOutcome<T>(
  read: () => T,
  errors: ErrorClass[],
  file: string,
  check: (v: T) => void = () => {},
  maxMs = Number.POSITIVE_INFINITY,
): 'ok' | 'error' {
  const t0 = performance.now();
  let value: T;
  try {
    value = read();
  } catch (err) {
    if (!errors.some((E) => err instanceof E)) throw new Error(`not a reader error: ${(err as Error)?.stack ?? String(err)}`);
    const msg = (err as Error).message;
    expect(msg).toContain(file);
    expect(msg.length).toBeLessThanOrEqual(MAX_MESSAGE);
    expect(msg).not.toMatch(/\n\s+at /);
    expect(performance.now() - t0).toBeLessThan(maxMs);
    return 'error';
  }
  expect(performance.now() - t0).toBeLessThan(maxMs);
  check(value);
  return 'ok';
}
