// The shared op-test helper reports what a failing kernel needs: the worst element, its index in the
// output's shape, the first mismatches; NaN (a poisoned, unwritten element) always fails.

import { describe, expect, it } from 'vitest';
import { compareOutput, opReport } from '@emofuse/kernels';

describe('op-test helper', () => {
  const tol = { atol: 1e-6, rtol: 1e-5 };

  it('names the worst element by its index in the shape', () => {
    const want = [0, 1, 2, 3, 4, 5];
    const got = [0, 1, 2, 3, 4.5, 5.01];
    const o = compareOutput('y', got, want, tol, [2, 3]);
    expect(o.mismatches).toBe(2);
    expect(o.worst).toEqual({ at: [1, 1], got: 4.5, want: 4 });
    const rep = opReport('op', tol, [o]);
    expect(rep.ok).toBe(false);
    expect(rep.message).toMatch(/op y \[2, 3\]: 2 of 6 elements outside atol=0\.000001 rtol=0\.00001/);
    expect(rep.message).toMatch(/worst at \[1, 1\]: got 4\.5, expected 4/);
  });

  it('fails an unwritten (NaN-poisoned) output and passes an exact one', () => {
    expect(opReport('op', tol, [compareOutput('y', [NaN, 1], [0, 1], tol)]).ok).toBe(false);
    expect(opReport('op', tol, [compareOutput('y', [0, 1], [0, 1], tol)])).toMatchObject({ ok: true, message: '', maxAbs: 0 });
  });
});
