// Built-in front ends: `logmel` against an independent numpy Kaldi fbank (scripts/fixtures/logmel_reference.py),
// its time patches, and `hash` on the real BERT WordPiece tokenizer from the offline assets.
import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  createAudioEncoder,
  createLogmelFrontEnd,
  createTextEncoder,
  hashVector,
  itemTokens,
  loadBertTokenizer,
  modelSettings,
  patchTokens,
} from '../../packages/model/src/encoders/index.ts';

const reference = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/logmel/reference.json'), 'utf8')) as {
  signal: number[];
  frames: number;
  melBins: number;
  normalisedFbank: number[];
};
const haveTokenizer = existsSync(join(modelSettings.assetsDir, 'tokenizer-bert-base-uncased/tokenizer.json'));

describe('logmel', () => {
  it('matches an independent numpy Kaldi fbank with AST normalisation', async () => {
    const fe = await createLogmelFrontEnd();
    const out = await fe.frames(Float32Array.from(reference.signal));
    expect(out.frames).toBe(reference.frames);
    let worst = 0;
    let worstAt = -1;
    for (let i = 0; i < reference.normalisedFbank.length; i++) {
      const err = Math.abs(out.data[i]! - reference.normalisedFbank[i]!);
      if (err > worst) [worst, worstAt] = [err, i];
    }
    // Normalised log-mel values are O(1); measured worst 5e-6 (the fixture keeps 5 decimals).
    expect(worst, `worst |diff| ${worst} at frame ${Math.floor(worstAt / 128)} bin ${worstAt % 128}`).toBeLessThan(1e-4);
  });

  it('groups frames into 16-frame patches every 10 frames: per-bin mean then std', () => {
    const frames = 36;
    const data = Float32Array.from({ length: frames * 128 }, (_, i) => Math.floor(i / 128) + (i % 128) / 1000);
    const p = patchTokens({ data, frames });
    expect(p.length).toBe(3); // patches start at frames 0, 10, 20 (the last one is 16 frames: 20..35)
    // Patch 1 covers frames 10..25: mean 17.5 (+bin/1000), std of 16 consecutive integers = sqrt((16^2-1)/12).
    expect(p.data[256 + 5]).toBeCloseTo(17.5 + 0.005, 4);
    expect(p.data[256 + 128 + 5]).toBeCloseTo(Math.sqrt(255 / 12), 4);
  });

  it('encodes a batch of clips of different lengths into [B, T, 256] with a mask', async () => {
    const enc = await createAudioEncoder('logmel');
    const tone = (s: number) => Float32Array.from({ length: s * 16000 }, (_, i) => 0.3 * Math.sin(i / 5));
    const batch = await enc.encode([tone(1), tone(2), new Float32Array(100)]);
    expect([batch.B, batch.C]).toEqual([3, 256]);
    expect(Array.from(batch.lengths)).toEqual([99, 199, 1].map((f) => Math.max(1, Math.ceil((f - 16) / 10) + 1)));
    expect(batch.T).toBe(batch.lengths[1]);
    expect(Array.from(batch.mask.subarray(0, batch.T)).reduce((a, b) => a + b)).toBe(batch.lengths[0]);
    expect(batch.tokens.every(Number.isFinite)).toBe(true);
  });
});

describe.runIf(haveTokenizer)('hash', () => {
  it('uses the real bert-base-uncased WordPiece ids', async () => {
    const tok = await loadBertTokenizer();
    expect(tok.encode('Hello world!')).toEqual([101, 7592, 2088, 999, 102]);
  });

  it('gives each token id one fixed pseudo-random vector, whatever the sentence', async () => {
    const enc = await createTextEncoder('hash');
    const batch = await enc.encode(['I love it', 'love']);
    expect([batch.B, batch.T, batch.C]).toEqual([2, 5, 256]);
    expect(Array.from(batch.lengths)).toEqual([5, 3]);
    const a = itemTokens(batch, 0);
    const b = itemTokens(batch, 1);
    // 'love' is token 2 of [CLS] i love it [SEP] and token 1 of [CLS] love [SEP].
    expect(Array.from(a.subarray(2 * 256, 3 * 256))).toEqual(Array.from(b.subarray(256, 512)));
    expect(Array.from(a.subarray(2 * 256, 3 * 256))).toEqual(Array.from(hashVector(2293)));
    expect(Array.from(a.subarray(256, 512))).not.toEqual(Array.from(a.subarray(2 * 256, 3 * 256)));
    expect(Array.from(batch.mask.subarray(5, 10))).toEqual([1, 1, 1, 0, 0]);
    // The vectors are roughly standard normal.
    const v = hashVector(12345);
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const varc = v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length;
    expect(Math.abs(mean)).toBeLessThan(0.2);
    expect(varc).toBeGreaterThan(0.7);
    expect(varc).toBeLessThan(1.3);
  });

  it('rejects unknown encoder specs with the list of choices', async () => {
    await expect(createTextEncoder('word2vec')).rejects.toThrow(/unknown text encoder 'word2vec': use one of hash, bert/);
    await expect(createAudioEncoder('mfcc')).rejects.toThrow(/unknown audio encoder 'mfcc': use one of logmel, speech, ast/);
  });
});
