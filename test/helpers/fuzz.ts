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
