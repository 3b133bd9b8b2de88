// Encoders on WebGPU: the transformers.js encoders (bert, ast) and the onnxruntime Whisper encoder run on
// onnxruntime-node's WebGPU execution provider (Dawn; lavapipe / llvmpipe here) with --device webgpu, and their
// tokens equal the CPU's to float rounding (tiny random models of test/fixtures, real EmoDB clips).

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createAudioEncoder, createTextEncoder, loadAudio, modelSettings, resolveEncoderDevice, usesDevice, type EncodedBatch } from '@emofuse/model';
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
  const clips = () => readdirSync(emodb).filter((f) => f.endsWith('.wav')).slice(0, 3).map((f) => loadAudio(join(emodb, f)));
  const cases: [string, 'text' | 'audio'][] = [
    [`bert:${models}/tiny-random-bert`, 'text'],
    [`ast:${models}/tiny-random-ast`, 'audio'],
    [`whisper:${models}/tiny-random-whisper@1`, 'audio'],
  ];
  for (const [spec, modality] of cases) {
    it.runIf(modality === 'text' || existsSync(emodb))(`${spec.replace(models + '/', '')}: tokens within 1e-4 of the CPU's (relative to the largest)`, async (ctx) => {
      if (!fx.gpu) return ctx.skip(fx.skipReason);
      const make = (device: 'cpu' | 'webgpu') => (modality === 'text' ? createTextEncoder(spec, { device }) : createAudioEncoder(spec, { device }));
      const input = modality === 'text' ? ['Oh my God, you are here!', 'no', 'I can not believe it, honestly, after all this time.'] : clips();
      const out: EncodedBatch[] = [];
      for (const device of ['cpu', 'webgpu'] as const) {
        const enc = await make(device);
        out.push(modality === 'text' ? await (enc as Awaited<ReturnType<typeof createTextEncoder>>).encode(input as string[]) : await (enc as Awaited<ReturnType<typeof createAudioEncoder>>).encode(input as Float32Array[]));
        await enc.dispose?.();
      }
      const w = worst(out[0]!, out[1]!);
      console.log(`${spec.replace(models + '/', '')}: max |webgpu - cpu| ${w.abs.toExponential(2)} (largest |token| ${w.scale.toFixed(2)})`);
      expect(w.scale).toBeGreaterThan(0);
      expect(w.abs, 'bit-identical to the CPU: did webgpu silently fall back to the CPU?').toBeGreaterThan(0);
      expect(w.abs).toBeLessThanOrEqual(1e-4 * Math.max(1, w.scale));
    }, 300_000);
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
    expect(['bert', 'bert:x', 'ast', 'whisper@2', 'whisper:m@1', 'hash', 'logmel', 'speech'].map(usesDevice)).toEqual([true, true, true, true, true, false, false, false]);
  });
});
