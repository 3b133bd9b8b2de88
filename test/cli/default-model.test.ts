// The shipped default model, as a new user meets it: `emofuse predict --audio clip` with no checkpoint and no text
// classifies real RAVDESS dev clips (actors 17-18, never trained on) into MELD's 7 emotions, with Whisper hearing the
// words; the recipe that made it (scripts/train-default.sh) gives the same weights bit for bit when run again (on a
// reduced recipe). Needs the converted encoders (all-MiniLM-L6-v2, Whisper tiny.en) and the offline assets: skipped
// with the reason where absent; CI converts both and sets EMOFUSE_REQUIRE_DEFAULT_MODEL=1, where absence fails.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL, modelSettings, parseLabelMap, readSafetensors, resolveLabel } from '@emofuse/model';
import { buildCli, emofuse, root } from '../helpers/cli.ts';

const minilm = join(modelSettings.modelsDir, 'sentence-transformers/all-MiniLM-L6-v2/onnx/model.onnx');
const whisper = join(modelSettings.modelsDir, 'Xenova/whisper-tiny.en/config.json');
const ravdess = join(modelSettings.assetsDir, 'ravdess');
const missing = [
  !existsSync(DEFAULT_MODEL.file) && `the shipped model ${DEFAULT_MODEL.file}`,
  !existsSync(minilm) && `all-MiniLM-L6-v2 (python3 scripts/convert_minilm.py) at ${minilm}`,
  !existsSync(whisper) && `Whisper tiny.en (python3 scripts/convert_whisper.py) at ${whisper}`,
  !existsSync(join(ravdess, 'manifest.csv')) && `RAVDESS in the assets (${ravdess})`,
].filter(Boolean);
const reason = `needs ${missing.join(', ')}`;
if (missing.length && process.env.EMOFUSE_REQUIRE_DEFAULT_MODEL === '1')
  throw new Error(`EMOFUSE_REQUIRE_DEFAULT_MODEL=1 but it ${reason}`);

/** RAVDESS label -> the shipped model's class: the meld7 map it was trained through (calm -> neutral). */
const MELD7 = parseLabelMap('meld7');

interface Clip {
  id: string;
  audio: string;
  label: string;
}

/**
 * Dev clips (actors 17 and 18): for each RAVDESS emotion, the strong-intensity takes of both sentences (neutral has none: its normal
 * takes).
 */
function devClips(): Clip[] {
  const lines = readFileSync(join(ravdess, 'manifest.csv'), 'utf8').trim().split('\n').slice(1);
  const clips: Clip[] = [];
  for (const line of lines) {
    const [id, , audio, label, split] = line.split(',');
    const [, , , intensity, , repetition] = id!.split('-');
    if (split !== 'dev' || repetition !== '01' || (label !== 'neutral' && intensity !== '02')) continue;
    clips.push({ id: id!, audio: join(ravdess, audio!), label: resolveLabel(label!, MELD7)! });
  }
  return clips;
}

let tmp = '';
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'emofuse-default-'));
  await buildCli();
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(missing.length > 0)(`the shipped default model (${missing.length ? reason : DEFAULT_MODEL.name})`, () => {
  it('predict --audio <a RAVDESS dev clip> with no checkpoint and no text ' +
    'prints the 7 emotions, names the model and its licence', async () => {
    const clip = devClips().find((c) => c.label === 'anger')!;
    const r = await emofuse(['predict', '--audio', clip.audio], { env: { EMOFUSE_OFFLINE: '1' }, timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("emofuse's shipped default model");
    expect(r.stderr).toContain('CC BY-NC-SA 4.0');
    for (const c of ['anger', 'disgust', 'fear', 'joy', 'neutral', 'sadness', 'surprise'])
      expect(r.stdout).toMatch(new RegExp(`\\b${c}\\b\\s+\\d+\\.\\d%`));
    expect(r.stdout).toMatch(/heard: ".+"/); // no --text: Whisper transcribed the clip
  }, 300_000);

  it('the top class of most dev clips of each emotion is its label (no checkpoint, no text)', async () => {
    const clips = devClips();
    const manifest = join(tmp, 'dev.csv');
    writeFileSync(manifest, `id,audio\n${clips.map((c) => `${c.id},${c.audio}`).join('\n')}\n`);
    const r = await emofuse(['predict', '--manifest', manifest, '--json'], { env: { EMOFUSE_OFFLINE: '1' }, timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    const predicted = new Map((JSON.parse(r.stdout) as { id: string; predicted: string }[]).map((p) => [p.id, p.predicted]));
    const byClass = new Map<string, { right: number; n: number }>();
    for (const c of clips) {
      const s = byClass.get(c.label) ?? { right: 0, n: 0 };
      s.n += 1;
      if (predicted.get(c.id) === c.label) s.right += 1;
      byClass.set(c.label, s);
    }
    const right = [...byClass.values()].reduce((a, s) => a + s.right, 0);
    console.log(
      `shipped model on ${clips.length} RAVDESS dev clips: ${right} right; ` +
        `${[...byClass].map(([k, s]) => `${k} ${s.right}/${s.n}`).join(', ')}`,
    );
    expect(clips.length).toBeGreaterThanOrEqual(28); // 7 classes x 2 actors x 2 sentences (neutral: its 2 normal takes x 2)
    expect(right / clips.length).toBeGreaterThanOrEqual(0.6);
    for (const [label, s] of byClass) expect(s.right, `${label}: ${s.right} of ${s.n} right`).toBeGreaterThanOrEqual(1);
  }, 600_000);

  it('without its encoders, says which conversion command and hub ids bring them', async () => {
    const clip = devClips()[0]!;
    const r = await emofuse(['predict', '--audio', clip.audio, '--text', 'Kids are talking by the door'], {
      env: { EMOFUSE_OFFLINE: '1', EMOFUSE_MODELS: join(tmp, 'no-models') },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/all-MiniLM-L6-v2/);
    expect(r.stderr).toMatch(/convert_minilm\.py/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }, 300_000);

  it('the recipe gives the same weights bit for bit when run again (reduced: 12 utterances a split, 1 epoch)', async () => {
    const run = (out: string) =>
      promisify(execFile)('bash', [join(root, 'scripts/train-default.sh'), out], {
        cwd: root,
        env: { ...process.env, LIMIT: '12', EPOCHS: '1', EMOFUSE_OFFLINE: '1' },
        maxBuffer: 64 << 20,
        timeout: 600_000,
      });
    await run(join(tmp, 'a'));
    await run(join(tmp, 'b'));
    const a = readFileSync(join(tmp, 'a', 'emofuse-default.safetensors'));
    const b = readFileSync(join(tmp, 'b', 'emofuse-default.safetensors'));
    expect(a.length).toBeGreaterThan(10_000);
    expect(Buffer.compare(a, b)).toBe(0);
    // the slimmed file carries its own checksum (scripts/slim-checkpoint.mjs through writeSafetensors), and it holds
    const meta = JSON.parse(readSafetensors(join(tmp, 'a', 'emofuse-default.safetensors')).metadata.emofuse!);
    expect(meta.sha256).toMatch(/^[0-9a-f]{64}$/);
  }, 900_000);
});
