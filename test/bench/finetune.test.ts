// bench train --finetune (packages/bench/src/finetune.ts), run tiny: the tiny random BERT fixture, one batch shape,
// 2 rounds. Checks that both sides step and the report is complete (never timings); PyTorch's column is null with
// the reason in `torch` where no python imports torch ($EMOFUSE_PYTHON or python3).

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { probeTorch, runFinetuneBench } from '@emofuse/bench';

const bert = join(import.meta.dirname, '../fixtures/models/tiny-random-bert');

describe('bench train --finetune', () => {
  it('times our fine-tuning step and the PyTorch twin on the same shapes in interleaved rounds', async () => {
    const progress: string[] = [];
    const r = await runFinetuneBench({
      modelFolder: bert,
      trainTop: 1,
      threads: 1,
      shapes: [
        { B: 2, T: 8 },
        { B: 3, T: 16 },
      ],
      rounds: 2,
      warmup: 1,
      width: 16,
      heads: 2,
      onProgress: (m) => progress.push(m),
    });
    const torch = await probeTorch();
    expect(r.rows.map((x) => `${x.B}x${x.T}`)).toEqual(['2x8', '3x16']);
    expect(r.samples).toHaveLength(4);
    expect(progress).toHaveLength(4);
    for (const x of r.rows) {
      expect(x.ours).toBeGreaterThan(0);
      if ('skip' in torch) expect(x.torch).toBeNull();
      else expect(x.torch).toBeGreaterThan(0);
    }
    expect(r.total.ours).toBeCloseTo(r.rows[0]!.ours + r.rows[1]!.ours, 10);
    expect(r.torch).toMatch('skip' in torch ? /^skipped \(/ : /^torch \d/);
  }, 180_000);
});
