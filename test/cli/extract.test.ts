// `emofuse make-dataset` and `emofuse extract` as a user runs them (the bundled CLI in a child process): EmoDB
// and the 4 real MELD wavs in MELD's layout with the built-in front ends, a folder of broken files, and a run
// killed with SIGKILL that the same command then finishes.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import { openFeatureCache } from '../../packages/model/src/cache/index.ts';
import { hasEspeak } from '../../packages/model/src/datasets/index.ts';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';
import { bin, buildCli, emofuse, root } from '../helpers/cli.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const run = promisify(execFile);
const assets = modelSettings.assetsDir;
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-extract-cli-'));

beforeAll(async () => {
  await buildCli();
});

describe('emofuse extract', () => {
  it.runIf(existsSync(join(assets, 'emodb/wav')))('extracts EmoDB with hash + logmel and prints throughput per encoder', async () => {
    const out = join(tmp, 'emodb');
    const r = await emofuse([
      'extract',
      '--dataset',
      'emodb',
      '--data',
      join(assets, 'emodb'),
      '--limit',
      '24',
      '--out',
      out,
      '--no-progress',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/text {2}hash +256 +[\d.]+/);
    expect(r.stdout).toMatch(/audio logmel +256 +[\d.]+/);
    const fs = openFeatureCache(out, { textEncoder: 'hash', audioEncoder: 'logmel' });
    expect(fs.classNames).toContain('boredom');
    expect(Object.values(fs.splits).reduce((n, s) => n + s.size, 0)).toBe(24);
  });

  it.runIf(existsSync(join(assets, 'emodb/wav')))('extracts through transformers.js with the tiny random BERT and AST models', async () => {
    const models = join(root, 'test/fixtures/models');
    const out = join(tmp, 'emodb-tiny');
    const r = await emofuse([
      'extract',
      '--dataset',
      'emodb',
      '--data',
      join(assets, 'emodb'),
      '--limit',
      '6',
      '--out',
      out,
      '--no-progress',
      '--text-encoder',
      `bert:${models}/tiny-random-bert`,
      '--audio-encoder',
      `ast:${models}/tiny-random-ast`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/text {2}bert:.*tiny-random-bert +32 +[\d.]+/);
    expect(r.stdout).toMatch(/audio ast:.*tiny-random-ast +32 +[\d.]+/);
    const fs = openFeatureCache(out);
    expect([fs.textDim, fs.audioDim]).toEqual([32, 32]);
    const b = fs.splits.train!.batch([0]);
    // An EmoDB clip of 1.5-4 s gives 15-40 AST time columns.
    expect(b.Ta).toBeGreaterThan(10);
    expect(b.Ta).toBeLessThan(60);
  });

  it.runIf(existsSync(join(assets, 'meld-audio/dia0_utt0.wav')))('extracts the 4 real MELD wavs laid out as MELD.Raw', async () => {
    const data = join(tmp, 'meld');
    mkdirSync(join(data, 'train_splits'), { recursive: true });
    const lines = readFileSync(join(assets, 'meld-text/train_sent_emo.csv'), 'utf8').split('\n');
    const keep = lines.filter((l, i) => i === 0 || /,(0,0|100,1|100,5|101,0),\d+,\d+,"/.test(l));
    writeFileSync(join(data, 'train_sent_emo.csv'), keep.join('\n') + '\n');
    for (const f of readdirSync(join(assets, 'meld-audio'))) symlinkSync(join(assets, 'meld-audio', f), join(data, 'train_splits', f));
    const out = join(tmp, 'meld-cache');
    const r = await emofuse(['extract', '--dataset', 'meld', '--data', data, '--out', out, '--json', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.splits).toEqual({ train: 4 });
    expect(summary.failures).toEqual([]);
    const fs = openFeatureCache(out);
    const b = fs.splits.train!.batch([0, 1, 2, 3]);
    expect(b.ids).toEqual(['train/dia0_utt0', 'train/dia100_utt1', 'train/dia100_utt5', 'train/dia101_utt0']);
    expect(b.Ta).toBeGreaterThan(10);
  });

  const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
  it.runIf(hasFfmpeg && existsSync(join(assets, 'meld-audio/dia0_utt0.wav')))(
    'extracts MELD.Raw .mp4 media (H.264 + AAC) through ffmpeg, close to the same clips as WAV',
    async () => {
      const data = join(tmp, 'meld-mp4');
      mkdirSync(join(data, 'train_splits'), { recursive: true });
      copyFileSync(join(tmp, 'meld', 'train_sent_emo.csv'), join(data, 'train_sent_emo.csv'));
      for (const f of readdirSync(join(assets, 'meld-audio'))) {
        // MELD.Raw ships video files: a small black video track plus the speech as AAC, like the real ones.
        const mp4 = join(data, 'train_splits', f.replace(/\.wav$/, '.mp4'));
        const r = spawnSync('ffmpeg', [
          '-nostdin',
          '-v',
          'error',
          '-f',
          'lavfi',
          '-i',
          'color=black:s=64x64:r=10',
          '-i',
          join(assets, 'meld-audio', f),
          '-shortest',
          '-c:v',
          'libx264',
          '-c:a',
          'aac',
          '-b:a',
          '128k',
          mp4,
        ]);
        expect(r.status, String(r.stderr)).toBe(0);
      }
      const out = join(tmp, 'meld-mp4-cache');
      const r = await emofuse(['extract', '--dataset', 'meld', '--data', data, '--out', out, '--json', '--no-progress']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).failures).toEqual([]);
      const fromMp4 = openFeatureCache(out).splits.train!.batch([0, 1, 2, 3]);
      const fromWav = openFeatureCache(join(tmp, 'meld-cache')).splits.train!.batch([0, 1, 2, 3]);
      expect(fromMp4.ids).toEqual(fromWav.ids);
      // AAC is lossy and its encoder adds a few ms of priming: allow one token of length difference, and
      // require the logmel tokens to be strongly correlated with the WAV ones over the common length.
      expect(Math.abs(fromMp4.Ta - fromWav.Ta)).toBeLessThanOrEqual(1);
      const C = openFeatureCache(out).audioDim;
      let sxy = 0,
        sxx = 0,
        syy = 0,
        sx = 0,
        sy = 0,
        n = 0;
      const T = Math.min(fromMp4.Ta, fromWav.Ta);
      for (let b = 0; b < 4; b++) {
        for (let t = 0; t < T; t++) {
          if (!fromMp4.audioMask[b * fromMp4.Ta + t] || !fromWav.audioMask[b * fromWav.Ta + t]) continue;
          for (let c = 0; c < C; c++) {
            const x = fromMp4.audio[(b * fromMp4.Ta + t) * C + c]!;
            const y = fromWav.audio[(b * fromWav.Ta + t) * C + c]!;
            sxy += x * y;
            sxx += x * x;
            syy += y * y;
            sx += x;
            sy += y;
            n++;
          }
        }
      }
      const corr = (sxy / n - (sx / n) * (sy / n)) / Math.sqrt((sxx / n - (sx / n) ** 2) * (syy / n - (sy / n) ** 2));
      console.log(`mp4 (AAC) vs wav logmel tokens: correlation ${corr.toFixed(4)} over ${n} values`);
      expect(corr).toBeGreaterThan(0.9);
    },
  );

  it.runIf(existsSync(join(assets, 'emodb/wav')))(
    'outside a terminal, prints a progress line at a steady interval (EMOFUSE_PROGRESS_SECONDS)',
    async () => {
      const out = join(tmp, 'emodb-progress');
      const args = [
        bin,
        'extract',
        '--dataset',
        'emodb',
        '--data',
        join(assets, 'emodb'),
        '--limit',
        '16',
        '--batch-size',
        '4',
        '--out',
        out,
      ];
      const { stderr } = await run(process.execPath, args, { timeout: 120_000, env: { ...process.env, EMOFUSE_PROGRESS_SECONDS: '0' } });
      const lines = stderr.split('\n').filter((l) => /^extract: \d+\/16 utterances, \d+ failed, [\d.]+ utt\/s, ETA /.test(l));
      expect(lines.length, stderr).toBeGreaterThanOrEqual(2);
      expect(lines.at(-1)).toMatch(/^extract: 16\/16 utterances/);
    },
  );

  it.runIf(existsSync(join(assets, 'meld-audio/dia0_utt0.wav')))(
    'skips a folder of broken files, counts and lists them, and still writes the good ones',
    async () => {
      const data = join(tmp, 'broken');
      mkdirSync(data);
      writeFileSync(join(data, 'empty.wav'), new Uint8Array(0));
      writeFileSync(join(data, 'text.wav'), 'not a wav');
      const good = readFileSync(join(assets, 'meld-audio/dia0_utt0.wav'));
      writeFileSync(join(data, 'truncated.wav'), good.subarray(0, 5000));
      const silent = new WaveFile();
      silent.fromScratch(2, 44_100, '16', [new Array(20_000).fill(0), new Array(20_000).fill(0)]);
      writeFileSync(join(data, 'silent.wav'), silent.toBuffer());
      symlinkSync(join(assets, 'meld-audio/dia0_utt0.wav'), join(data, 'good.wav'));
      const names = ['empty', 'text', 'truncated', 'silent', 'missing', 'good'];
      writeFileSync(
        join(data, 'm.jsonl'),
        names.map((n) => JSON.stringify({ id: n, text: `file ${n}`, audio: `${n}.wav`, label: 'neutral', split: 'train' })).join('\n'),
      );
      const out = join(tmp, 'broken-cache');
      const r = await emofuse(['extract', '--dataset', 'manifest', '--data', join(data, 'm.jsonl'), '--out', out, '--no-progress']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/5 utterance\(s\) skipped/);
      expect(r.stdout).toMatch(/empty: 1, corrupt: 1, truncated: 1, silent: 1, missing: 1/);
      for (const n of ['empty', 'text', 'truncated', 'silent', 'missing']) expect(r.stdout).toContain(join(data, `${n}.wav`));
      expect(openFeatureCache(out).splits.train!.ids).toEqual(['good']);
    },
  );

  it.runIf(hasEspeak())('survives SIGKILL mid-extraction: the same command resumes and completes', async () => {
    const data = join(tmp, 'controlled');
    const made = await emofuse(['make-dataset', 'controlled', '--out', data, '--size', '48', '--no-progress']);
    expect(made.code, made.stderr).toBe(0);
    const out = join(tmp, 'killed');
    const args = [
      bin,
      'extract',
      '--dataset',
      'controlled',
      '--data',
      data,
      '--out',
      out,
      '--shard-size',
      '8',
      '--batch-size',
      '4',
      '--no-progress',
    ];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    // Kill it as soon as the first shard is on disk.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (existsSync(join(out, 'index.json'))) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
      child.on('error', reject);
    });
    await new Promise((r) => child.on('close', r));
    const partial = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    const r = await emofuse([
      'extract',
      '--dataset',
      'controlled',
      '--data',
      data,
      '--out',
      out,
      '--shard-size',
      '8',
      '--batch-size',
      '4',
      '--json',
      '--no-progress',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.complete).toBe(true);
    // The kill landed after the first of 6 shards (each takes far longer than the 20 ms poll): this run resumed there.
    expect(partial.complete).toBe(false);
    expect(summary.resumedFrom).toBe(partial.shards.at(-1).end);
    expect(summary.resumedFrom).toBeGreaterThan(0);
    const fs = openFeatureCache(out);
    expect(Object.values(fs.splits).reduce((n, s) => n + s.size, 0)).toBe(48);
  });

  it('explains bad input without a stack trace', async () => {
    const r = await emofuse(['extract', '--dataset', 'nope', '--data', tmp, '--out', join(tmp, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown dataset kind 'nope': use one of manifest, emodb, meld, ravdess, crema-d, controlled/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
