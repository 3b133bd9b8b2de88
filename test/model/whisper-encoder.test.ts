// The `whisper` audio encoder on a tiny random-weight Whisper encoder (scripts/fixtures/make_tiny_models.py, the
// layout scripts/convert_whisper.py writes): transformers.js's feature extractor + onnxruntime against Python's
// feature extractor + PyTorch, frame cropping to the real audio, 4-frame pooling, spec parsing and its errors. The
// full 30 s window ('+full'), as the reference was computed; the sliced window (the default) is whisper-sliced.test.ts.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAudioEncoder, itemTokens } from '../../packages/model/src/encoders/index.ts';
import {
  coveredFrames,
  createWhisperEncoder,
  parseWhisperSpec,
  poolFrames,
  DEFAULT_WHISPER,
  DEFAULT_WHISPER_LAYER,
  DEFAULT_WHISPER_WINDOW,
} from '../../packages/model/src/encoders/whisper.ts';

const dir = join(import.meta.dirname, '../fixtures/models/tiny-random-whisper');
const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
  samples: number;
  layer: number;
  tokens: number[];
  shape: number[];
};

function chirp(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => {
    const t = i / 16000;
    return 0.3 * Math.sin(2 * Math.PI * (200 * t + 400 * t * t));
  });
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(b).reduce((m, v, i) => Math.max(m, Math.abs(a[i]! - v)), 0);

describe('whisper spec and frame arithmetic', () => {
  it('parses model and layer', () => {
    const window = DEFAULT_WHISPER_WINDOW;
    expect(parseWhisperSpec('')).toEqual({ model: DEFAULT_WHISPER, layer: DEFAULT_WHISPER_LAYER, window });
    expect(parseWhisperSpec('@3')).toEqual({ model: DEFAULT_WHISPER, layer: 3, window });
    expect(parseWhisperSpec('onnx-community/whisper-base@last')).toEqual({ model: 'onnx-community/whisper-base', layer: 'last', window });
    expect(parseWhisperSpec('/a/b')).toEqual({ model: '/a/b', layer: DEFAULT_WHISPER_LAYER, window });
    expect(parseWhisperSpec('x@two').layer).toBeNaN();
  });
  it('keeps the 50/s frames that cover the audio, at most 30 s', () => {
    expect([1, 320, 321, 16000, 20800, 480000, 960000].map(coveredFrames)).toEqual([1, 1, 2, 50, 65, 1500, 1500]);
  });
  it('averages 4 frames per token, the last run shorter', () => {
    const x = Float32Array.from({ length: 6 * 2 }, (_, i) => i); // [6, 2]
    expect(poolFrames(x, 6, 2, 4)).toEqual({ data: Float32Array.from([3, 4, 9, 10]), length: 2 });
  });
});

describe('whisper encoder (tiny random fixture)', () => {
  it("matches PyTorch's pooled layer-1 tokens over the real audio only", async () => {
    const enc = await createAudioEncoder(`whisper:${dir}@${ref.layer}+full`);
    expect(enc.id).toBe(`whisper:${dir}@1+full`);
    expect(enc.window).toBe('full');
    expect(enc.dim).toBe(16);
    expect(enc.version).toMatch(/^whisper-v1:layer1:frames50\/s:mean4:/);
    const long = chirp(ref.samples);
    const short = long.slice(0, 3200); // 0.2 s: 10 frames -> 3 tokens
    const batch = await enc.encode([long, short]);
    expect(Array.from(batch.lengths)).toEqual([17, 3]);
    expect(ref.shape).toEqual([17, 16]);
    expect(maxDiff(itemTokens(batch, 0), ref.tokens)).toBeLessThan(2e-3);
    // Each clip alone gives the same tokens (the batch pads tokens, never audio), and padded tokens are masked zeros.
    const alone = await enc.encode([short]);
    expect(maxDiff(itemTokens(batch, 1), itemTokens(alone, 0))).toBeLessThan(1e-5);
    expect(Array.from(batch.mask.subarray(17, 34))).toEqual([1, 1, 1, ...Array(14).fill(0)]);
    await enc.dispose?.();
  });

  it('@last reads encoder_model.onnx; other layers differ from it', async () => {
    const last = await createAudioEncoder(`whisper:${dir}@last+full`);
    const l2 = await createAudioEncoder(`whisper:${dir}@2+full`);
    const l1 = await createAudioEncoder(`whisper:${dir}@1+full`);
    const clip = chirp(8000);
    const [a, b, c] = [await last.encode([clip]), await l2.encode([clip]), await l1.encode([clip])];
    expect(maxDiff(a.tokens, b.tokens)).toBeLessThan(1e-4);
    expect(maxDiff(a.tokens, c.tokens)).toBeGreaterThan(1e-2);
    for (const e of [last, l2, l1]) await e.dispose?.();
  });

  it("without the states file (the hub's layout) layer 1 is tapped out of encoder_model.onnx, same tokens", async () => {
    const clip = chirp(12000);
    const withStates = await createWhisperEncoder(`${dir}@1+full`);
    const hub = await createWhisperEncoder(`${dir}@1+full`, { hubLayout: true });
    const [a, b] = [await withStates.encode([clip]), await hub.encode([clip])];
    expect(b.lengths[0]).toBe(10);
    expect(maxDiff(a.tokens, b.tokens)).toBeLessThan(1e-5);
    await expect(createWhisperEncoder(`${dir}@0+full`, { hubLayout: true })).rejects.toThrow(
      /layer 0 \(the embeddings\) needs .*encoder_hidden_states\.onnx/,
    );
    for (const e of [withStates, hub]) await e.dispose?.();
  });

  it('says which layers exist and what a bad layer looks like', async () => {
    await expect(createAudioEncoder(`whisper:${dir}@7`)).rejects.toThrow(/has 2 encoder layers; ask for @0 \(embeddings\) to @2 or @last/);
    await expect(createAudioEncoder(`whisper:${dir}@x`)).rejects.toThrow(/must be a layer number/);
    await expect(createAudioEncoder('whisper:/nonexistent/whisper@1')).rejects.toThrow(
      /whisper-encoder model '\/nonexistent\/whisper' not found: searched/,
    );
  });
});
