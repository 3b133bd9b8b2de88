// The feature cache: float16 and safetensors round trips, extraction with broken files skipped and listed,
// resume after an interrupted run (same bytes as an uninterrupted run), and verification on open.
import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, truncateSync, statSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import wavefilePkg from 'wavefile';
import {
  decodeHalf,
  decodeSafetensors,
  encodeHalf,
  encodeSafetensors,
  extractFeatures,
  openFeatureCache,
  bytesOf,
  toHalf,
} from '../../packages/model/src/cache/index.ts';
import {
  createAudioEncoder,
  createTextEncoder,
  itemTokens,
  type AudioEncoder,
  type TextEncoder,
} from '../../packages/model/src/encoders/index.ts';
import { readManifest } from '../../packages/model/src/datasets/index.ts';
import { loadAudio } from '../../packages/model/src/audio/index.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');

describe('float16', () => {
  it('rounds to nearest even and round-trips representable values exactly', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(1e6)).toBe(0x7c00);
    expect(toHalf(1e-9)).toBe(0);
    expect(toHalf(2 ** -24)).toBe(1); // smallest subnormal
    expect(Array.from(decodeHalf(Uint16Array.of(0x3555)))[0]).toBeCloseTo(0.333251953125, 12);
    const xs = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 1.7) * 10 ** ((i % 9) - 4));
    const back = decodeHalf(encodeHalf(xs));
    for (let i = 0; i < xs.length; i++) {
      if (Math.abs(xs[i]!) > 6.1e-5) expect(Math.abs(back[i]! - xs[i]!) / Math.abs(xs[i]!)).toBeLessThanOrEqual(2 ** -11);
      else expect(Math.abs(back[i]! - xs[i]!)).toBeLessThanOrEqual(2 ** -25);
    }
  });
});

describe('safetensors', () => {
  it('round-trips tensors and metadata and rejects truncation', () => {
    const a = Float32Array.of(1, 2, 3, 4, 5, 6);
    const bytes = encodeSafetensors({ a: { dtype: 'F32', shape: [2, 3], data: bytesOf(a) } }, { note: 'hi' });
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    const d = decodeSafetensors(bytes);
    expect(d.metadata).toEqual({ note: 'hi' });
    const t = d.tensors.get('a')!;
    expect(t.shape).toEqual([2, 3]);
    expect(Array.from(new Float32Array(t.data.slice().buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 4), 'x.safetensors')).toThrow(
      /x\.safetensors: tensor 'a'.*does not fit the file/,
    );
  });
});

describe('extractFeatures / openFeatureCache', () => {
  let dir: string;
  let text: TextEncoder;
  let audio: AudioEncoder;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'emofuse-cache-'));
    const rows = ['id,text,audio,label,split'];
    for (let i = 0; i < 7; i++) {
      const rate = [16000, 22050, 44100][i % 3]!;
      const n = Math.round(rate * (0.3 + 0.1 * i));
      const wav = new WaveFile();
      wav.fromScratch(
        1,
        rate,
        '16',
        Array.from({ length: n }, (_, k) => Math.round(8000 * Math.sin((2 * Math.PI * (200 + 50 * i) * k) / rate))),
      );
      writeFileSync(join(dir, `u${i}.wav`), wav.toBuffer());
      rows.push(`u${i},utterance number ${i} is here,u${i}.wav,${i % 2 ? 'joy' : 'anger'},${i < 5 ? 'train' : 'dev'}`);
    }
    writeFileSync(join(dir, 'empty.wav'), new Uint8Array(0));
    rows.push('bad1,an empty file,empty.wav,joy,train', 'bad2,a missing file,nothere.wav,anger,dev');
    writeFileSync(join(dir, 'manifest.csv'), rows.join('\n') + '\n');
    text = await createTextEncoder('hash');
    audio = await createAudioEncoder('logmel');
  });

  it('stores every good utterance in float16, lists the broken ones, and reads back a FeatureSet', async () => {
    const ds = readManifest(join(dir, 'manifest.csv'));
    const out = join(dir, 'cache-full');
    const r = await extractFeatures({ dataset: ds, textEncoder: text, audioEncoder: audio, out, batchSize: 3, shardSize: 4 });
    expect(r.index.complete).toBe(true);
    expect(r.index.shards.map((s) => [s.start, s.end, s.utterances])).toEqual([
      [0, 4, 4],
      [4, 8, 3],
      [8, 9, 0],
    ]);
    expect(r.index.failures.map((f) => [f.id, f.problem])).toEqual([
      ['bad1', 'empty'],
      ['bad2', 'missing'],
    ]);
    expect(r.index.splits.train!.ids).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
    expect(r.index.splits.dev!.labels).toEqual([1, 0]);
    expect(r.index.throughput.text).toBeGreaterThan(0);

    const fs = openFeatureCache(out, { textEncoder: 'hash', audioEncoder: 'logmel' });
    expect([fs.textDim, fs.audioDim, fs.textEncoder, fs.audioEncoder]).toEqual([256, 256, 'hash', 'logmel']);
    expect(fs.classNames).toEqual(['anger', 'joy']);
    const batch = fs.splits.train!.batch([3, 1]);
    expect(batch.ids).toEqual(['u3', 'u1']);
    // At a model's shape: the same tokens, cut to Tt / Ta, in rows of the fixed batch (padding rows labelled -1).
    const fixed = fs.splits.train!.batch([3, 1], { rows: 3, Tt: 2, Ta: 5 });
    expect(Array.from(fixed.labels)).toEqual([...Array.from(batch.labels), -1]);
    expect(Array.from(fixed.audio.subarray(0, 5 * 256))).toEqual(Array.from(batch.audio.subarray(0, 5 * 256)));
    expect(Array.from(fixed.text.subarray(2 * 256, 4 * 256))).toEqual(
      Array.from(batch.text.subarray(batch.Tt * 256, (batch.Tt + 2) * 256)),
    );
    // The cached tokens equal the encoders' float32 output to float16 precision.
    const ref = await audio.encode([loadAudio(join(dir, 'u3.wav'))]);
    const refTokens = itemTokens(ref, 0);
    expect(Array.from(batch.audioMask.subarray(0, batch.Ta)).filter((m) => m === 1)).toHaveLength(ref.lengths[0]!);
    for (let i = 0; i < refTokens.length; i++)
      expect(Math.abs(batch.audio[i]! - refTokens[i]!)).toBeLessThanOrEqual(Math.abs(refTokens[i]!) * 2 ** -11 + 1e-7);
    const refText = await text.encode(['utterance number 1 is here']);
    const off = batch.Tt * 256;
    for (let i = 0; i < refText.lengths[0]! * 256; i++)
      expect(Math.abs(batch.text[off + i]! - refText.tokens[i]!)).toBeLessThanOrEqual(Math.abs(refText.tokens[i]!) * 2 ** -11 + 1e-7);
    expect(Array.from(batch.textMask.subarray(batch.Tt, 2 * batch.Tt)).reduce((a, b) => a + b)).toBe(refText.lengths[0]);
  });

  it('resumes an interrupted run and ends with the same shards as an uninterrupted one', async () => {
    const ds = readManifest(join(dir, 'manifest.csv'));
    const full = join(dir, 'cache-full');
    const out = join(dir, 'cache-resume');
    const stop = new AbortController();
    const first = await extractFeatures({
      dataset: ds,
      textEncoder: text,
      audioEncoder: audio,
      out,
      batchSize: 3,
      shardSize: 4,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.done >= 4) stop.abort();
      },
    });
    expect(first.stopped).toBe(true);
    expect(first.index.shards).toHaveLength(1);
    expect(() => openFeatureCache(out)).toThrow(
      /extraction is incomplete \(4 of 9 utterances\): run the same 'emofuse extract' again to resume/,
    );
    const second = await extractFeatures({ dataset: ds, textEncoder: text, audioEncoder: audio, out, batchSize: 3, shardSize: 4 });
    expect(second.resumedFrom).toBe(4);
    expect(second.processedThisRun).toBe(5);
    const fullIndex = JSON.parse(readFileSync(join(full, 'index.json'), 'utf8'));
    expect(second.index.shards.map((s) => s.sha256)).toEqual(fullIndex.shards.map((s: { sha256: string }) => s.sha256));
    expect(second.index.splits).toEqual(fullIndex.splits);
    expect(second.index.failures).toEqual(fullIndex.failures);
    // A different encoder cannot resume into the same folder.
    const other = await createTextEncoder('hash:64');
    await expect(extractFeatures({ dataset: ds, textEncoder: other, audioEncoder: audio, out })).rejects.toThrow(
      /cannot be resumed with text 'hash:64'/,
    );
  });

  it('refuses a mismatched encoder, a truncated shard and a corrupted one', async () => {
    const ds = readManifest(join(dir, 'manifest.csv'));
    const out = join(dir, 'cache-damage');
    await extractFeatures({ dataset: ds, textEncoder: text, audioEncoder: audio, out, shardSize: 4 });
    expect(() => openFeatureCache(out, { textEncoder: 'bert' })).toThrow(/made with text encoder 'hash', not 'bert'/);
    const shard = join(out, 'shard-00001.safetensors');
    const bytes = readFileSync(shard);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(shard, bytes);
    expect(() => openFeatureCache(out)).toThrow(/shard-00001\.safetensors: sha256 differs from index\.json/);
    truncateSync(shard, statSync(shard).size - 100);
    expect(() => openFeatureCache(out)).toThrow(/shard-00001\.safetensors: \d+ bytes, index\.json says \d+: the shard is truncated/);
    // Resuming redoes the damaged shard and what follows it.
    const r = await extractFeatures({ dataset: ds, textEncoder: text, audioEncoder: audio, out, shardSize: 4 });
    expect(r.resumedFrom).toBe(4);
    expect(openFeatureCache(out).splits.train!.size).toBe(5);
    rmSync(join(out, 'index.json'));
    expect(() => openFeatureCache(out)).toThrow(/no index\.json: not a feature cache/);
  });

  it('writes a text-only cache whose utterances have no audio tokens', async () => {
    const ds = readManifest(join(dir, 'manifest.csv'), { textOnly: true });
    const out = join(dir, 'cache-text');
    const r = await extractFeatures({ dataset: ds, textEncoder: text, audioEncoder: null, out });
    expect(r.index.failures).toEqual([]);
    const fs = openFeatureCache(out);
    expect(fs.audioEncoder).toBe('none');
    const b = fs.splits.dev!.batch([0, 1, 2]);
    expect(fs.audioDim).toBe(1);
    expect(Array.from(b.audioMask)).toEqual([0, 0, 0]);
  });
});
