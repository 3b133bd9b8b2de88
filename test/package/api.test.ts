// The library API (packages/model/src/api.ts) from the sources: what a program gets back and the errors it sees.
// test/package/pack.test.ts runs the same API from the packed tarballs.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AudioError, CpuBackend, EmotionClassifier, FusionModel, PredictError, saveCheckpoint, type FusionConfig } from '@emofuse/model';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-api-'));
const ckpt = join(tmp, 'tiny.safetensors');
const CLASSES = ['angry', 'happy', 'sad'];
const tone = (n: number, rate: number) => Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / rate));

beforeAll(async () => {
  const config: FusionConfig = {
    fusion: 'concat',
    textDim: 256,
    audioDim: 256,
    maxTextLen: 32,
    maxAudioLen: 64,
    width: 8,
    heads: 2,
    layers: 1,
    ffnMult: 2,
    dropout: 0,
    numClasses: 3,
    seed: 3,
  };
  await saveCheckpoint(FusionModel.create(new CpuBackend('f32'), config), ckpt, {
    format: 1,
    config,
    classNames: CLASSES,
    step: 0,
    textEncoder: 'hash',
    audioEncoder: 'logmel',
    metrics: {},
    train: {},
  });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('EmotionClassifier', () => {
  it('classify gives the labels, probabilities in their order, and the top class; classifyAll batches alike', async () => {
    const clf = await EmotionClassifier.load(ckpt, { backend: 'cpu' });
    try {
      expect(clf.labels).toEqual(CLASSES);
      const r = await clf.classify({ audio: tone(16_000, 16_000), text: 'I am so glad you came.' });
      expect(r.labels).toEqual(CLASSES);
      expect(r.probs).toBeInstanceOf(Float32Array);
      expect(r.probs.reduce((a, p) => a + p, 0)).toBeCloseTo(1, 5);
      const k = r.probs.indexOf(Math.max(...r.probs));
      expect(r.top).toEqual({ label: CLASSES[k], prob: expect.closeTo(r.probs[k]!, 6) });
      expect([r.text, r.transcribed, r.truncated]).toEqual(['I am so glad you came.', false, false]);
      // Given at 48 kHz, the clip is resampled to the encoder's 16 kHz: near the same answer.
      const [again, at48k] = await clf.classifyAll([
        { audio: tone(16_000, 16_000), text: 'I am so glad you came.' },
        { audio: tone(48_000, 48_000), sampleRate: 48_000, text: 'I am so glad you came.' },
      ]);
      expect(Array.from(again!.probs)).toEqual(Array.from(r.probs));
      for (const [i, p] of at48k!.probs.entries()) expect(Math.abs(p - r.probs[i]!)).toBeLessThan(1e-2);
    } finally {
      await clf.dispose();
    }
  });

  it('bad input is an error naming the input and the fix: sample rate, silence, non-finite samples, no audio', async () => {
    const clf = await EmotionClassifier.load(ckpt, { backend: 'cpu' });
    try {
      await expect(clf.classify({ audio: tone(100, 16_000), sampleRate: 0, text: 'x', id: 'mic' })).rejects.toThrow(PredictError);
      await expect(clf.classify({ audio: tone(100, 16_000), sampleRate: 44_100.5, text: 'x', id: 'mic' })).rejects.toThrow(
        /mic: sampleRate must be a whole number/,
      );
      await expect(clf.classify({ audio: new Float32Array(16_000), text: 'x', id: 'mic' })).rejects.toThrow(/mic: audio is silent/);
      await expect(clf.classify({ audio: new Float32Array(0), text: 'x' })).rejects.toThrow(AudioError);
      await expect(clf.classify({ audio: Float32Array.of(0.1, Number.NaN), text: 'x', id: 'mic' })).rejects.toThrow(/mic: sample 1 is NaN/);
      await expect(clf.classify({ text: 'x' })).rejects.toThrow(/input 0: no audio given: this checkpoint reads audio/);
      await expect(clf.classify({ audio: join(tmp, 'missing.wav'), text: 'x' })).rejects.toThrow(/missing\.wav: audio file not found/);
    } finally {
      await clf.dispose();
    }
  });

  it('an unknown backend or checkpoint is a clear error; a backend passed in stays open after dispose', async () => {
    await expect(EmotionClassifier.load(ckpt, { backend: 'tpu' as 'cpu' })).rejects.toThrow(/options\.backend must be .*'cpu'.*got 'tpu'/);
    await expect(EmotionClassifier.load(join(tmp, 'none.safetensors'), { backend: 'cpu' })).rejects.toThrow(
      /none\.safetensors does not exist/,
    );
    const backend = new CpuBackend('f32');
    let destroyed = 0;
    const destroy = backend.destroy.bind(backend);
    backend.destroy = async () => {
      destroyed++;
      await destroy();
    };
    const clf = await EmotionClassifier.load(ckpt, { backend });
    await clf.dispose();
    expect(destroyed).toBe(0);
  });
});
