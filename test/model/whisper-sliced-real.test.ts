// The sliced Whisper window on real weights against PyTorch's own sliced run: two RAVDESS dev clips (3.37 s and
// 4.47 s, windows of 176 and 224 frames, so two batches) through our rewritten encoder_model.onnx and through HF's
// WhisperEncoder.forward on a positional table cut to each window (test/fixtures/whisper-sliced-reference.json,
// written by scripts/fixtures/whisper_sliced_reference.py). Skipped, with the reason, where a converted model is
// absent; under EMOFUSE_REQUIRE_WHISPER=1 (CI) tiny.en must be there, and whisper-base too when
// EMOFUSE_REQUIRE_WHISPER_BASE=1.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAudio } from '../../packages/model/src/audio/index.ts';
import { createAudioEncoder, itemTokens, modelSettings } from '../../packages/model/src/encoders/index.ts';

interface Ref {
  layer: number;
  clips: string[];
  samples: number[];
  tokens: number[];
  first8: number[][];
  mean: number[][];
}
const refs = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/whisper-sliced-reference.json'), 'utf8')) as Record<
  string,
  Ref
>;
const ravdess = join(modelSettings.assetsDir, 'ravdess');

for (const [model, ref] of Object.entries(refs)) {
  const folder = join(modelSettings.modelsDir, model, 'onnx', 'encoder_model.onnx');
  const have = existsSync(folder);
  const reason =
    `no converted ${model} at ${folder}: ` + `run 'python3 scripts/convert_whisper.py${model.endsWith('base') ? ' --model base' : ''}'`;
  const required =
    process.env.EMOFUSE_REQUIRE_WHISPER === '1' && (!model.endsWith('base') || process.env.EMOFUSE_REQUIRE_WHISPER_BASE === '1');
  if (!have && required) throw new Error(`EMOFUSE_REQUIRE_WHISPER=1 but ${reason}`);
  describe.skipIf(!have)(`sliced window, real ${model}${have ? '' : ` (skipped: ${reason})`}`, () => {
    it(`layer ${ref.layer}: our sliced encoder gives PyTorch's sliced-window tokens`, async () => {
      const clips = ref.clips.map((c) => loadAudio(join(ravdess, c), { sampleRate: 16_000 }));
      expect(clips.map((c) => c.length)).toEqual(ref.samples);
      const enc = await createAudioEncoder(`whisper:${model}@${ref.layer}`);
      const batch = await enc.encode(clips);
      await enc.dispose?.();
      expect(Array.from(batch.lengths)).toEqual(ref.tokens);
      const C = batch.C;
      for (let b = 0; b < clips.length; b++) {
        const ours = itemTokens(batch, b);
        const mean = new Float64Array(C);
        for (let t = 0; t < ref.tokens[b]!; t++) for (let c = 0; c < C; c++) mean[c]! += ours[t * C + c]! / ref.tokens[b]!;
        const scale = Math.max(...ref.first8[b]!.map(Math.abs));
        const worst = (a: ArrayLike<number>, want: number[]) => want.reduce((m, v, i) => Math.max(m, Math.abs(a[i]! - v)), 0);
        // float32 onnxruntime vs float32 PyTorch, rounded to 5 decimals in the file: 1e-3 of the largest state
        expect(worst(ours.subarray(0, 8 * C), ref.first8[b]!), `clip ${b} first 8 tokens (scale ${scale})`).toBeLessThan(1e-3 * scale);
        expect(worst(mean, ref.mean[b]!), `clip ${b} mean token`).toBeLessThan(1e-3 * scale);
      }
    }, 300_000);
  });
}
