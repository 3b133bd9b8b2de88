// The whole fusion model's backward (every variant) against central finite differences of its loss, on the cpu
// backend in float64, tiny config with padding, dropout on (the same mask in every evaluation) and class weights.

import { describe, expect, it } from 'vitest';
import { CpuBackend, FUSION_SPECS, FUSION_VARIANTS, FusionModel } from '@emofuse/model';
import { tinyConfig, tinyInputs, withMissingModalities } from './helpers.ts';

const EPS = 1e-5;
const ATOL = 1e-6;
const RTOL = 1e-4;

// Every variant; the variants with attention blocks also with dropout inside the blocks (blockDropout).
const CASES: { name: string; config: ReturnType<typeof tinyConfig>; missing?: boolean }[] = [
  ...FUSION_VARIANTS.map((fusion) => ({ name: fusion, config: tinyConfig(fusion) })),
  ...(['cross-self', 'self', 'audio'] as const).map((fusion) => ({
    name: `${fusion}, block dropout 0.3`,
    config: tinyConfig(fusion, { blockDropout: 0.3 }),
  })),
  // the linear skip into the classifier: both modalities, one modality, a merge head
  ...(['cross-self', 'audio', 'text', 'gate'] as const).map((fusion) => ({
    name: `${fusion}, linear skip`,
    config: tinyConfig(fusion, { linearSkip: true }),
  })),
  // a whole modality absent (row 0 without audio, row 1 without text: mixed-corpus training): fully masked
  // cross-attention rows both ways, pooling and the skip's stats over one modality
  ...(['cross-self', 'cross', 'self', 'concat', 'gate', 'linear'] as const).map((fusion) => ({
    name: `${fusion}, linear skip, modalities missing`,
    config: tinyConfig(fusion, { linearSkip: true }),
    missing: true,
  })),
];

describe('fusion model backward vs finite differences (cpu, float64)', () => {
  for (const { name, config, missing } of CASES) {
    it(name, async () => {
      const be = new CpuBackend('f64');
      const model = FusionModel.create(be, config);
      const inputs = missing ? withMissingModalities(tinyInputs(model.config, 3, 11)) : tinyInputs(model.config, 3, 11);
      const weights = [1, 2, 0.5];
      const acts = model.setInputs(inputs, weights);
      const loss = async () => {
        await model.forward(acts, true, true);
        return model.readLoss(acts);
      };
      await model.forward(acts, true, true);
      await model.backward(acts, true);
      const grads = await model.readGrads();
      let checked = 0;
      let worst = { name: '', i: 0, an: 0, fd: 0, err: 0 };
      for (const p of model.params) {
        const value = await be.read(p.value);
        const g = grads.get(p.name)!;
        // A few elements of every parameter, spread over it.
        const picks = new Set([0, value.length - 1, Math.floor(value.length / 2), Math.floor(value.length / 3)]);
        for (const i of picks) {
          const orig = value[i]!;
          value[i] = orig + EPS;
          be.write(p.value, value);
          const lp = await loss();
          value[i] = orig - EPS;
          be.write(p.value, value);
          const lm = await loss();
          value[i] = orig;
          be.write(p.value, value);
          const fd = (lp - lm) / (2 * EPS);
          const err = Math.abs(fd - g[i]!);
          if (err - (ATOL + RTOL * Math.abs(fd)) > worst.err - (ATOL + RTOL * Math.abs(worst.fd)))
            worst = { name: p.name, i, an: g[i]!, fd, err };
          checked++;
        }
      }
      const ok = worst.err <= ATOL + RTOL * Math.abs(worst.fd);
      expect(
        ok,
        `worst: ${worst.name}[${worst.i}] analytic ${worst.an} vs fd ${worst.fd} (|err| ${worst.err}); ${checked} elements checked`,
      ).toBe(true);
      // The check is not vacuous: gradients are not all zero.
      let total = 0;
      for (const g of grads.values()) for (const x of g) total += Math.abs(x);
      expect(total).toBeGreaterThan(1e-3);
    });
  }
});

describe('fusion specs', () => {
  it('each variant builds exactly the parts its spec names', () => {
    for (const fusion of FUSION_VARIANTS) {
      const s = FUSION_SPECS[fusion];
      const parts = new Set(
        FusionModel.create(new CpuBackend(), tinyConfig(fusion, { layers: 2 })).params.map((p) => p.name.split('.')[0]!),
      );
      const stems = s.head !== 'linear'; // the linear head reads pooled inputs: no projections
      const want = [
        s.text && stems && 'text',
        s.audio && stems && 'audio',
        s.cross && 'cross',
        s.self && 'self',
        s.head === 'gate' && 'gate',
        s.head !== 'pool' && s.head !== 'linear' && 'head',
        'classifier',
      ];
      expect([...parts].sort(), fusion).toEqual(want.filter((x): x is string => !!x).sort());
      const skip = FusionModel.create(new CpuBackend(), tinyConfig(fusion, { linearSkip: true })).params.filter((p) =>
        p.name.startsWith('skip'),
      );
      const c = tinyConfig(fusion);
      const S = (s.text ? 2 * c.textDim : 0) + (s.audio ? 2 * c.audioDim : 0); // mean + std of each modality read
      expect(
        skip.map((p) => [p.name, ...p.shape]),
        fusion,
      ).toEqual(s.head === 'linear' ? [] : [['skip.w', S, c.numClasses]]);
    }
  });
});
