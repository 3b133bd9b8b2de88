// --select-by corpus-mean: the dev score that picks the epoch is the mean of each corpus's weighted F1, so a large
// corpus (MELD's 1,109 dev utterances beside RAVDESS's 120) does not decide for the others.

import { describe, expect, it } from 'vitest';
import { computeMetrics, corpusMeanF1, type FeatureSplit } from '@emofuse/model';

const classes = ['a', 'b'];
/** A split as far as the score reads it: labels and the corpus of each utterance. */
const split = (labels: number[], corpora?: string[]) =>
  ({ labels: Int32Array.from(labels), ...(corpora ? { corpora } : {}) }) as unknown as FeatureSplit;

describe('corpusMeanF1', () => {
  it('averages the corpora, each weighted once, not their utterances', () => {
    // big: 8 utterances, all right; small: 2 utterances, both wrong
    const s = split([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], ['big', 'big', 'big', 'big', 'big', 'big', 'big', 'big', 'small', 'small']);
    const predictions = [0, 1, 0, 1, 0, 1, 0, 1, 1, 0];
    expect(corpusMeanF1(s, predictions, classes)).toBeCloseTo((1 + 0) / 2, 12);
    expect(computeMetrics(s.labels, predictions, classes).weightedF1).toBeCloseTo(0.8, 12); // pooled: the big corpus decides
  });

  it('is the pooled weighted F1 where the split names no corpora', () => {
    const s = split([0, 1, 1, 0]);
    const predictions = [0, 1, 0, 0];
    expect(corpusMeanF1(s, predictions, classes)).toBe(computeMetrics(s.labels, predictions, classes).weightedF1);
  });
});
