// Decoding and resampling to 16 kHz: the polyphase Kaiser-sinc resampler (audio/resample.ts) against wave-resampler
// (sinc + 16th-order Butterworth, what loadAudio used before) on pure tones at 44.1 and 48 kHz: flat passband,
// no aliases, at least as good as before; and the direct 16-bit / float WAV reader against wavefile, value for value.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import resamplerPkg from 'wave-resampler';
import { clipCacheFile, decodeWav, decodeWavGeneric, loadAudio, loadAudioCached, resamplePolyphase } from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const { resample } = resamplerPkg as unknown as typeof import('wave-resampler');
const TO = 16000;

/** Output level (dB re the input tone) of a 1 s, 0.5-amplitude tone at f Hz, away from the clip's edges. */
function toneGain(f: number, from: number, rs: (x: Float32Array) => ArrayLike<number>): number {
  const y = rs(Float32Array.from({ length: from }, (_, i) => 0.5 * Math.sin((2 * Math.PI * f * i) / from)));
  let p = 0;
  for (let n = 2000; n < TO - 2000; n++) p += y[n]! ** 2;
  return 10 * Math.log10(p / ((TO - 4000) * 0.125));
}

describe('resampling to 16 kHz', () => {
  for (const from of [44100, 48000]) {
    const ours = (x: Float32Array) => resamplePolyphase(x, from, TO);
    const before = (x: Float32Array) => resample(x, from, TO, { method: 'sinc', LPF: true, LPFType: 'IIR' });
    it(
      `${from} Hz: passband flat to 0.1 dB up to 7.5 kHz like wave-resampler's; aliases at least as far down (8.5 kHz below -45 ` +
        `dB, 9 kHz and up below -90 dB)`,
      () => {
        for (const f of [50, 440, 1000, 3000, 5000, 7000, 7500]) {
          expect(Math.abs(toneGain(f, from, ours)), `${f} Hz`).toBeLessThan(0.1);
          expect(Math.abs(toneGain(f, from, before)), `${f} Hz (wave-resampler)`).toBeLessThan(0.1);
        }
        expect(toneGain(8500, from, ours)).toBeLessThan(Math.min(-45, toneGain(8500, from, before)));
        expect(toneGain(9000, from, ours)).toBeLessThan(Math.min(-90, toneGain(9000, from, before)));
        for (const f of [11025, 15000, 20000]) expect(toneGain(f, from, ours), `${f} Hz`).toBeLessThan(-90);
      },
    );
  }
  it('lengths, DC, identity, bad rates', () => {
    const x = new Float32Array(44101).fill(0.25);
    const y = resamplePolyphase(x, 44100, TO);
    expect(y.length).toBe(Math.ceil((44101 * 160) / 441));
    expect(Math.abs(y[8000]! - 0.25)).toBeLessThan(1e-6);
    expect(resamplePolyphase(x, TO, TO)).toBe(x);
    expect(resamplePolyphase(new Float32Array(3000), 8000, TO).length).toBe(6000);
    expect(() => resamplePolyphase(x, 44100.5, TO)).toThrow(/positive integers/);
  });
});

describe('the direct WAV reader', () => {
  const wav = (rate: number, channels: number, bitDepth: string, samples: number[][]) => {
    const w = new WaveFile();
    w.fromScratch(channels, rate, bitDepth, channels === 1 ? samples[0]! : samples);
    return w.toBuffer();
  };
  const same = (bytes: Uint8Array, what: string) => {
    const a = decodeWav(bytes, what);
    const b = decodeWavGeneric(bytes, what);
    expect(a.sampleRate).toBe(b.sampleRate);
    expect(a.channels.length).toBe(b.channels.length);
    for (const [i, c] of a.channels.entries()) expect(c, `${what} channel ${i}`).toEqual(b.channels[i]);
  };
  it('equals wavefile on 16-bit PCM (mono, stereo) and 32-bit float, and on the real MELD and EmoDB clips', () => {
    const n = (k: number) => Array.from({ length: 999 }, (_, i) => Math.round(32767 * Math.sin(i * 0.01 * (k + 1))));
    same(wav(48000, 1, '16', [n(0)]), '16-bit mono');
    same(wav(44100, 2, '16', [n(0), n(1)]), '16-bit stereo');
    same(wav(22050, 2, '32f', [n(0).map((v) => v / 40000), n(1).map((v) => v / 40000)]), 'float stereo');
    const dirs = ['meld-audio', 'emodb/wav'].map((d) => join(modelSettings.assetsDir, d)).filter(existsSync);
    for (const d of dirs)
      for (const f of readdirSync(d)
        .filter((f) => f.endsWith('.wav'))
        .slice(0, 2))
        same(new Uint8Array(readFileSync(join(d, f))), f);
  });
});

describe('the decoded-clip cache (extract --audio-cache)', () => {
  it('decodes a clip once: the next load reads the same samples back; a changed file is decoded again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'emofuse-clips-'));
    try {
      const w = new WaveFile();
      w.fromScratch(
        1,
        44100,
        '16',
        Array.from({ length: 44100 }, (_, i) => Math.round(9000 * Math.sin(i / 7))),
      );
      const file = join(dir, 'a.wav');
      writeFileSync(file, w.toBuffer());
      const first = loadAudioCached(file, join(dir, 'cache'));
      expect(first.cached).toBe(false);
      expect(existsSync(clipCacheFile(join(dir, 'cache'), file, 16000)!)).toBe(true);
      const second = loadAudioCached(file, join(dir, 'cache'));
      expect(second.cached).toBe(true);
      expect(second.samples).toEqual(loadAudio(file));
      utimesSync(file, new Date(), new Date(Date.now() + 5000));
      expect(loadAudioCached(file, join(dir, 'cache')).cached).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
