// The sliced Whisper window (the default; whisper.cpp's audio_ctx) on the tiny random fixture: the rewritten
// encoder_model.onnx computes the same network as the full window when the window is the full 30 s, stops at the layer
// asked for, gives a clip the same tokens whatever else is in its batch, and really changes the features of a short
// clip; its spec, version and the cache index's record of the window. Against PyTorch's own sliced run on real speech:
// whisper-sliced-real.test.ts.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { createAudioEncoder, itemTokens } from '../../packages/model/src/encoders/index.ts';
import { parseWhisperSpec, sliceEncoder, slicedWindow, SLICE_STEP } from '../../packages/model/src/encoders/whisper.ts';
import { extractFeatures, readCacheIndex } from '../../packages/model/src/cache/index.ts';
import { createHashEncoder } from '../../packages/model/src/encoders/hash.ts';

const dir = join(import.meta.dirname, '../fixtures/models/tiny-random-whisper');

function chirp(n: number, f0 = 200): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => {
    const t = i / 16000;
    return 0.3 * Math.sin(2 * Math.PI * (f0 * t + 400 * t * t)) * (1 + 0.5 * Math.sin(2 * Math.PI * 3 * t));
  });
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(b).reduce((m, v, i) => Math.max(m, Math.abs(a[i]! - v)), 0);

describe('sliced window arithmetic and spec', () => {
  it('rounds the covered frames up to SLICE_STEP, at most 1500', () => {
    expect(SLICE_STEP).toBe(8);
    // 1 sample -> 1 frame -> 8; 2 s -> 100 -> 104; 3.37 s -> 169 -> 176; 30 s and more -> 1500
    expect([1, 2560, 2561, 32000, 53920, 480000, 960000].map(slicedWindow)).toEqual([8, 8, 16, 104, 176, 1500, 1500]);
  });
  it("'+full' and '+sliced' after the layer; sliced by default", () => {
    expect(parseWhisperSpec('@2+full')).toMatchObject({ layer: 2, window: 'full' });
    expect(parseWhisperSpec('Xenova/whisper-base@last+sliced')).toEqual({ model: 'Xenova/whisper-base', layer: 'last', window: 'sliced' });
    expect(parseWhisperSpec('Xenova/whisper-base+full')).toMatchObject({ model: 'Xenova/whisper-base', layer: 2, window: 'full' });
    expect(parseWhisperSpec('')).toMatchObject({ window: 'sliced' });
  });
});

describe('sliced whisper encoder (tiny random fixture)', () => {
  it('a 30 s window gives the full-window features at every layer (the rewrite computes the same network)', async () => {
    const clip = chirp(480000);
    for (const layer of [0, 1, 2]) {
      const sliced = await createAudioEncoder(`whisper:${dir}@${layer}`);
      const full = await createAudioEncoder(`whisper:${dir}@${layer}+full`);
      const [a, b] = [await sliced.encode([clip]), await full.encode([clip])];
      expect(a.lengths[0]).toBe(375);
      expect(maxDiff(a.tokens, b.tokens), `layer ${layer}`).toBeLessThan(1e-4);
      for (const e of [sliced, full]) await e.dispose?.();
    }
  }, 120_000);

  it('a short clip: different features from the full window, the same whatever its batch holds', async () => {
    const enc = await createAudioEncoder(`whisper:${dir}@1`);
    const full = await createAudioEncoder(`whisper:${dir}@1+full`);
    expect(enc.window).toBe('sliced');
    expect(enc.version).toMatch(/^whisper-v2:layer1:sliced8:frames50\/s:mean4:/);
    expect(full.version).toMatch(/^whisper-v1:layer1:frames50\/s:mean4:/);
    const a = chirp(20800); // 1.3 s: 65 frames, window 72
    const b = chirp(20000, 300); // 1.25 s: 63 frames, window 64
    const c = chirp(20900, 250); // window 72, batched with a
    const batch = await enc.encode([a, b, c]);
    expect(Array.from(batch.lengths)).toEqual([17, 16, 17]);
    for (const [i, clip] of [a, b, c].entries()) {
      const alone = await enc.encode([clip]);
      expect(maxDiff(itemTokens(batch, i), itemTokens(alone, 0)), `clip ${i}`).toBeLessThan(1e-5);
    }
    const f = await full.encode([a]);
    expect(maxDiff(itemTokens(batch, 0), itemTokens(f, 0))).toBeGreaterThan(1e-3); // measured 6e-3 on this random model
    for (const e of [enc, full]) await e.dispose?.();
  });

  it('stops at the deepest layer asked for: the graph keeps no later layer', async () => {
    const file = join(dir, 'onnx', 'encoder_model.onnx');
    const { onnx } = (await import('onnx-proto')).default as typeof import('onnx-proto');
    const nodes = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.name ?? '');
    const upTo1 = nodes((await sliceEncoder(file, [1], 2, 'fixture')).bytes);
    const upTo2 = nodes((await sliceEncoder(file, [2], 2, 'fixture')).bytes);
    const upTo0 = nodes((await sliceEncoder(file, [0], 2, 'fixture')).bytes);
    expect(upTo1.some((n) => /layers\.0\//.test(n))).toBe(true);
    expect(upTo1.some((n) => /layers\.1\//.test(n))).toBe(false);
    expect(upTo2.some((n) => /layers\.1\//.test(n))).toBe(true);
    expect(upTo0.some((n) => /layers\./.test(n))).toBe(false);
    expect(upTo0.length).toBeLessThan(upTo1.length);
    await expect(sliceEncoder(join(dir, 'config.json'), [1], 2, 'bad')).rejects.toThrow();
  });

  it('the cache index records the window, and a cache of one window is not resumed with the other', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'emofuse-sliced-'));
    try {
      const items = [0, 1].map((i) => {
        const wav = new WaveFile();
        wav.fromScratch(1, 16000, '32f', chirp(16000 + 4000 * i));
        const file = join(tmp, `c${i}.wav`);
        writeFileSync(file, wav.toBuffer());
        return { id: `c${i}`, text: 'x', audio: file, label: i, split: 'train' };
      });
      const dataset = { name: 'manifest', classNames: ['a', 'b'], items, source: 'test' };
      const text = await createHashEncoder(8);
      const sliced = await createAudioEncoder(`whisper:${dir}@1`);
      const out = join(tmp, 'cache');
      await extractFeatures({ dataset, textEncoder: text, audioEncoder: sliced, out });
      const index = readCacheIndex(out);
      expect(index.audio.window).toBe('sliced');
      expect(JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).audio.window).toBe('sliced');
      // the same id, the other window: a different version, refused with both windows named
      const full = await createAudioEncoder(`whisper:${dir}@1+full`);
      const fullAsSameId = { ...full, id: sliced.id, encode: full.encode, dispose: full.dispose };
      await expect(extractFeatures({ dataset, textEncoder: text, audioEncoder: fullAsSameId, out })).rejects.toThrow(
        /sliced window; this run: whisper-v1.*full window/,
      );
      for (const e of [sliced, full]) await e.dispose?.();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
