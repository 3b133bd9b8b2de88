// Metrics against values worked by hand (and as scikit-learn's f1_score / precision_recall_fscore_support give them).

import { describe, expect, it } from 'vitest';
import { computeMetrics } from '@emofuse/model';

describe('computeMetrics', () => {
  it('matches a hand-worked 3-class example', () => {
    // true:      0 0 0 1 1 2
    // predicted: 0 0 1 1 2 2
    const m = computeMetrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ['a', 'b', 'c']);
    expect(m.confusion).toEqual([
      [2, 1, 0],
      [0, 1, 1],
      [0, 0, 1],
    ]);
    expect(m.accuracy).toBeCloseTo(4 / 6, 12);
    // a: P 1, R 2/3, F1 0.8; b: P 1/2, R 1/2, F1 0.5; c: P 1/2, R 1, F1 2/3.
    expect(m.perClass.map((c) => c.f1)).toEqual([expect.closeTo(0.8, 12), expect.closeTo(0.5, 12), expect.closeTo(2 / 3, 12)]);
    expect(m.perClass.map((c) => c.support)).toEqual([3, 2, 1]);
    expect(m.macroF1).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
    expect(m.weightedF1).toBeCloseTo((0.8 * 3 + 0.5 * 2 + (2 / 3) * 1) / 6, 12);
  });
  it('a class never predicted and a class never present score 0 without NaN', () => {
    const m = computeMetrics([0, 0, 1], [0, 0, 0], ['x', 'y', 'z']);
    expect(m.perClass[1]).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(m.perClass[2]).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(m.weightedF1).toBeCloseTo(((2 * (2 / 3)) / (1 + 2 / 3)) * (2 / 3), 12);
  });
});
