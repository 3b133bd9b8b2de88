// The `speech` audio encoder: openWakeWord's speech embedding models (offline assets) through onnxruntime-node.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createAudioEncoder, itemTokens, modelSettings } from '../../packages/model/src/encoders/index.ts';
import { loadAudio } from '../../packages/model/src/audio/index.ts';

const dir = join(modelSettings.assetsDir, 'speech-embedding');
const emodb = join(modelSettings.assetsDir, 'emodb/wav');

describe.runIf(existsSync(join(dir, 'embedding_model.onnx')) && existsSync(emodb))('speech (openWakeWord speech embedding)', () => {
  it('gives one 96-d token per 80 ms of audio, the same for the same clip in any batch', async () => {
    const enc = await createAudioEncoder('speech');
    const a = loadAudio(join(emodb, '03a01Fa.wav'));
    const b = loadAudio(join(emodb, '03a01Wa.wav'));
    const batch = await enc.encode([a, b, new Float32Array(8000)]);
    expect(batch.C).toBe(96);
    const frames = (n: number) => Math.floor(n / 160) - 3; // the mel model's frame count for n samples
    expect(batch.lengths[0]).toBe(Math.floor((frames(a.length) - 76) / 8) + 1);
    expect(batch.lengths[2]).toBeGreaterThanOrEqual(1);
    expect(batch.tokens.every(Number.isFinite)).toBe(true);
    const alone = await enc.encode([b]);
    const x = itemTokens(batch, 1);
    const y = itemTokens(alone, 0);
    expect(x.length).toBe(y.length);
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-4);
    // Real speech gives non-trivial, varying embeddings over time.
    const t0 = itemTokens(batch, 0).subarray(0, 96);
    const t5 = itemTokens(batch, 0).subarray(5 * 96, 6 * 96);
    expect(t0.some((v, i) => Math.abs(v - t5[i]!) > 1e-2)).toBe(true);
    await enc.dispose?.();
  });
});
