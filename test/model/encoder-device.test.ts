// Encoders on WebGPU: the transformers.js encoders (bert, ast) and the onnxruntime Whisper encoder run on
// onnxruntime-node's WebGPU execution provider (Dawn; lavapipe / llvmpipe here) with --device webgpu. On the tiny
// random models of test/fixtures their tokens equal the CPU's to float rounding; the real Whisper tiny.en does not
// (a batch of 4 clips comes out wrong), so extract and predict check a webgpu encoder's first batch against the CPU
// (packages/model/src/encoders/device-check.ts): tested here with an injected wrong webgpu output, and on a right one.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  checkOnDevice,
  clearDeviceVerdicts,
  compareEncoded,
  createAudioEncoder,
  createTextEncoder,
  deviceVerdict,
  EncoderDeviceError,
  loadAudio,
  modelSettings,
  padSequences,
  resolveEncoderDevice,
  usesDevice,
  type EncodedBatch,
  type EncoderDevice,
  type TextEncoder,
} from '@emofuse/model';
import { openGpu } from '../helpers/gpu.ts';

const models = fileURLToPath(new URL('../fixtures/models', import.meta.url));
const emodb = join(modelSettings.assetsDir, 'emodb/wav');
const fx = await openGpu(); // a WebGPU adapter at all (else the webgpu cases are skipped, with the reason)
await fx.gpu?.destroy();

function worst(a: EncodedBatch, b: EncodedBatch): { abs: number; scale: number } {
  expect([b.B, b.T, b.C]).toEqual([a.B, a.T, a.C]);
  expect(b.mask).toEqual(a.mask);
  let abs = 0;
  let scale = 0;
  a.tokens.forEach((v, i) => {
    abs = Math.max(abs, Math.abs(v - b.tokens[i]!));
    scale = Math.max(scale, Math.abs(v));
  });
  return { abs, scale };
}

describe('--device webgpu equals --device cpu', () => {
  const clips = () =>
    readdirSync(emodb)
      .filter((f) => f.endsWith('.wav'))
      .slice(0, 3)
      .map((f) => loadAudio(join(emodb, f)));
  const cases: [string, 'text' | 'audio'][] = [
    [`bert:${models}/tiny-random-bert`, 'text'],
    [`ast:${models}/tiny-random-ast`, 'audio'],
    [`whisper:${models}/tiny-random-whisper@1`, 'audio'],
  ];
  for (const [spec, modality] of cases) {
    it.runIf(modality === 'text' || existsSync(emodb))(
      `${spec.replace(models + '/', '')}: tokens within 1e-4 of the CPU's (relative to the largest)`,
      async (ctx) => {
        if (!fx.gpu) return ctx.skip(fx.skipReason);
        const make = (device: 'cpu' | 'webgpu') =>
          modality === 'text' ? createTextEncoder(spec, { device }) : createAudioEncoder(spec, { device });
        const input =
          modality === 'text' ? ['Oh my God, you are here!', 'no', 'I can not believe it, honestly, after all this time.'] : clips();
        const out: EncodedBatch[] = [];
        for (const device of ['cpu', 'webgpu'] as const) {
          const enc = await make(device);
          out.push(
            modality === 'text'
              ? await (enc as Awaited<ReturnType<typeof createTextEncoder>>).encode(input as string[])
              : await (enc as Awaited<ReturnType<typeof createAudioEncoder>>).encode(input as Float32Array[]),
          );
          await enc.dispose?.();
        }
        const w = worst(out[0]!, out[1]!);
        console.log(
          `${spec.replace(models + '/', '')}: max |webgpu - cpu| ${w.abs.toExponential(2)} (largest |token| ${w.scale.toFixed(2)})`,
        );
        expect(w.scale).toBeGreaterThan(0);
        expect(w.abs, 'bit-identical to the CPU: did webgpu silently fall back to the CPU?').toBeGreaterThan(0);
        expect(w.abs).toBeLessThanOrEqual(1e-4 * Math.max(1, w.scale));
      },
      300_000,
    );
  }
});

describe('--device', () => {
  it('cpu and webgpu as given; auto picks cpu on a software adapter or none; anything else is refused', async () => {
    expect((await resolveEncoderDevice('webgpu')).device).toBe('webgpu');
    expect((await resolveEncoderDevice('cpu')).device).toBe('cpu');
    const auto = await resolveEncoderDevice('auto');
    if (!fx.gpu || /software/.test(fx.label)) expect(auto.device).toBe('cpu');
    expect(auto.reason.length).toBeGreaterThan(5);
    await expect(resolveEncoderDevice('gpu')).rejects.toThrow(/--device must be one of cpu, webgpu, auto, got 'gpu'/);
  });
  it('applies to the network encoders only', () => {
    expect(['bert', 'bert:x', 'ast', 'whisper@2', 'whisper:m@1', 'hash', 'logmel', 'speech'].map(usesDevice)).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});

/** [B, T, C] of seeded values in [-2, 2], one row per text (T = its length in characters, C = 4). */
function tokensOf(texts: readonly string[]): EncodedBatch {
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed / 2 ** 32) * 4 - 2;
  };
  return padSequences(
    texts.map((t) => ({ data: Float32Array.from({ length: t.length * 4 }, rnd), length: t.length })),
    4,
  );
}

describe('compareEncoded: |webgpu - cpu| <= 1e-3 + 1e-2 |cpu| everywhere', () => {
  const want = tokensOf(['abc', 'abcdef']); // [2, 6, 4]
  const with_ = (i: number, v: number) => ({ ...want, tokens: want.tokens.map((x, j) => (j === i ? v : x)) });
  it('equal passes', () => expect(compareEncoded(want, want)).toMatchObject({ ok: true, bad: 0, total: 48 }));
  it('rounding passes', () => expect(compareEncoded(with_(5, want.tokens[5]! + 9e-4), want).ok).toBe(true));
  it('one element off fails, at [b, t, c]', () =>
    expect(compareEncoded(with_(37, want.tokens[37]! + 0.5), want)).toMatchObject({
      ok: false,
      bad: 1,
      worst: { index: 37, at: [1, 3, 1] },
    }));
  it('NaN fails', () => expect(compareEncoded(with_(0, NaN), want)).toMatchObject({ ok: false, bad: 1, worst: { index: 0 } }));
  it('another shape fails', () =>
    expect(compareEncoded(tokensOf(['abc', 'abcde']), want)).toMatchObject({
      ok: false,
      bad: 48,
      shape: expect.stringMatching(/webgpu gave 2x5x4 .* cpu 2x6x4/),
    }));
});

describe('checkOnDevice: a webgpu encoder checked on its first batch', () => {
  /** A fake text encoder; on webgpu, element 37 of every batch is off by `error` (an injected wrong kernel). */
  function fakes(error: number) {
    const made: EncoderDevice[] = [];
    const disposed: EncoderDevice[] = [];
    const create = async (device: EncoderDevice): Promise<TextEncoder> => {
      made.push(device);
      return {
        modality: 'text',
        id: 'fake',
        version: 'fake-v1',
        dim: 4,
        async encode(texts) {
          const out = tokensOf(texts);
          if (device === 'webgpu') out.tokens[37]! += error;
          return out;
        },
        async dispose() {
          disposed.push(device);
        },
      };
    };
    return { made, disposed, create };
  }
  const texts = ['abc', 'abcdef'];

  it('an explicit webgpu that disagrees is refused: the encoder, the device, the worst element, the fix; cached', async () => {
    clearDeviceVerdicts();
    const f = fakes(0.5);
    const enc = await checkOnDevice('fake', 'webgpu', 'refuse', f.create);
    const err = await enc.encode(texts).catch((e: Error) => e);
    expect(err).toBeInstanceOf(EncoderDeviceError);
    expect((err as Error).message).toMatch(
      new RegExp(
        String.raw`^encoder 'fake' on --device webgpu disagrees with the CPU on its first batch \(2 items\): 1 of 48 elements outside .* ` +
          String.raw`worst at \[1, 3, 1\] \(element 37\): webgpu .*\|diff\| 0\.5\).*run with --device cpu`,
      ),
    );
    expect(f.made).toEqual(['webgpu', 'cpu']);
    await expect(enc.encode(texts)).rejects.toThrow(EncoderDeviceError); // never a wrong batch after the refusal
    expect(deviceVerdict('fake', 'webgpu')).toMatchObject({ ok: false, bad: 1, batch: 2 });
    // the verdict, at once
    await expect(checkOnDevice('fake', 'webgpu', 'refuse', f.create)).rejects.toThrow(/encoder 'fake' on --device webgpu disagrees/);
    expect(f.made).toEqual(['webgpu', 'cpu']);
  });

  it("auto falls back to the cpu, says why, and that batch is the CPU's", async () => {
    clearDeviceVerdicts();
    const f = fakes(0.5);
    const why: string[] = [];
    const enc = await checkOnDevice('fake', 'webgpu', 'cpu', f.create, (w) => why.push(w));
    expect(await enc.encode(texts)).toEqual(tokensOf(texts));
    expect(why).toEqual([
      expect.stringMatching(
        /^encoder 'fake': webgpu disagrees with the CPU on the first batch \(1 of 48 elements .*\); it runs on the cpu instead$/,
      ),
    ]);
    expect(f.disposed).toEqual(['webgpu']);
    expect(await enc.encode(['xyz'])).toEqual(tokensOf(['xyz'])); // later batches on the cpu too
    await enc.dispose?.();
    expect(f.disposed).toEqual(['webgpu', 'cpu']);
    const again = await checkOnDevice('fake', 'webgpu', 'cpu', f.create, (w) => why.push(w));
    expect(f.made.at(-1)).toBe('cpu'); // cached: straight to the cpu
    expect(why).toHaveLength(2);
    await again.dispose?.();
  });

  it('a webgpu that agrees is kept: its own output, the CPU encoder disposed, checked once', async () => {
    clearDeviceVerdicts();
    const f = fakes(5e-4);
    const enc = await checkOnDevice('fake', 'webgpu', 'refuse', f.create);
    const got = await enc.encode(texts);
    expect(got.tokens[37]).toBeCloseTo(tokensOf(texts).tokens[37]! + 5e-4, 6);
    expect(f.made).toEqual(['webgpu', 'cpu']);
    expect(f.disposed).toEqual(['cpu']);
    await enc.encode(texts);
    expect(f.made).toHaveLength(2);
    expect(deviceVerdict('fake', 'webgpu')).toMatchObject({ ok: true, bad: 0 });
  });

  it('on cpu or without a policy nothing is checked', async () => {
    clearDeviceVerdicts();
    const f = fakes(0.5);
    await (await checkOnDevice('fake', 'webgpu', undefined, f.create)).encode(texts);
    await (await checkOnDevice('fake', 'cpu', 'refuse', f.create)).encode(texts);
    expect(f.made).toEqual(['webgpu', 'cpu']);
    expect(deviceVerdict('fake', 'webgpu')).toBeUndefined();
  });

  it.runIf(existsSync(emodb))(
    'a right model on the real WebGPU provider passes (tiny-random-whisper, 4 EmoDB clips)',
    async (ctx) => {
      if (!fx.gpu) return ctx.skip(fx.skipReason);
      clearDeviceVerdicts();
      const spec = `whisper:${models}/tiny-random-whisper@1`;
      const clips = readdirSync(emodb)
        .filter((f) => f.endsWith('.wav'))
        .slice(0, 4)
        .map((f) => loadAudio(join(emodb, f)));
      const enc = await createAudioEncoder(spec, { device: 'webgpu', check: 'refuse' });
      const out = await enc.encode(clips);
      await enc.dispose?.();
      const v = deviceVerdict(spec, 'webgpu')!;
      console.log(
        `tiny-random-whisper, 4 clips: max |webgpu - cpu| ${v.worst.diff.toExponential(2)}; webgpu ${v.encodeMs.toFixed(0)} ms, ` +
          `check ${v.checkMs.toFixed(0)} ms`,
      );
      expect(v).toMatchObject({ ok: true, bad: 0, batch: 4 });
      expect(out.B).toBe(4);
    },
    300_000,
  );
});
