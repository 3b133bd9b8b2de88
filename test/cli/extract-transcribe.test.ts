// `emofuse extract --transcribe` with the real Whisper tiny.en (scripts/convert_whisper.py): a manifest whose text
// column is empty for one row is transcribed once, and a second extraction into the same cache reads the
// transcript back instead of running speech recognition again. Skipped, with the reason, without the converted
// model; CI converts it and sets EMOFUSE_REQUIRE_WHISPER=1, where its absence fails.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = `${root}packages/cli/bin/emofuse.js`;
const modelDir = join(modelSettings.modelsDir, 'Xenova/whisper-tiny.en');
const have = existsSync(join(modelDir, 'onnx', 'decoder_model_merged.onnx'));
const reason = `no converted Whisper tiny.en at ${modelDir}: run 'python3 scripts/convert_whisper.py'`;
if (!have && process.env.EMOFUSE_REQUIRE_WHISPER === '1') throw new Error(`EMOFUSE_REQUIRE_WHISPER=1 but ${reason}`);
const out = mkdtempSync(join(tmpdir(), 'emofuse-transcribe-'));

beforeAll(async () => {
  if (have) await run(process.execPath, [`${root}packages/cli/build.mjs`]);
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.skipIf(!have)(`extract --transcribe${have ? '' : ` (skipped: ${reason})`}`, () => {
  it('fills an empty text column once; the rerun reads the transcript cache', async () => {
    const clips = join(modelSettings.assetsDir, 'meld-audio');
    const manifest = join(out, 'm.csv');
    writeFileSync(
      manifest,
      `id,text,audio,label\nd0u0,,${join(clips, 'dia0_utt0.wav')},surprise\nd101u0,Hey! Hey.,${join(clips, 'dia101_utt0.wav')},joy\n`,
    );
    const args = [
      bin,
      'extract',
      '--dataset',
      'manifest',
      '--data',
      manifest,
      '--transcribe',
      '--no-progress',
      '--out',
      join(out, 'cache'),
    ];
    const first = await run(process.execPath, args, { timeout: 300_000, env: { ...process.env, EMOFUSE_OFFLINE: '1' } });
    expect(first.stdout).toMatch(/transcribed 1 of 1 utterances without text \(0 from /);
    const cached = JSON.parse(readFileSync(join(out, 'cache', 'transcripts.json'), 'utf8')) as { transcripts: Record<string, string> };
    expect(Object.values(cached.transcripts)).toHaveLength(1);
    expect(Object.values(cached.transcripts)[0]!.toLowerCase()).toContain('coffee mugs have numbers');
    const second = await run(process.execPath, args, { timeout: 300_000, env: { ...process.env, EMOFUSE_OFFLINE: '1' } });
    expect(second.stdout).toMatch(/transcribed 0 of 1 utterances without text \(1 from /);
  }, 600_000);

  it('--transcribe with --text-only is a usage error naming both flags', async () => {
    const manifest = join(out, 't.csv');
    writeFileSync(manifest, 'id,text,audio,label\na,,,joy\n');
    const err = await run(process.execPath, [
      bin,
      'extract',
      '--dataset',
      'manifest',
      '--data',
      manifest,
      '--transcribe',
      '--text-only',
      '--out',
      join(out, 'c2'),
    ]).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/--transcribe needs the audio: drop --text-only/);
    expect(err.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});
