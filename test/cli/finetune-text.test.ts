// `emofuse train --finetune-text` and the commands downstream of its file (packages/cli/src/finetune-text.ts): a tiny
// fine-tune of the tiny random BERT fixture on 60 MELD utterances, then eval and predict on the file it writes (the
// fine-tuned encoder, not the frozen one) and export (the encoder in the ONNX graph), --resume, and the combinations train
// refuses (exit 2, naming the flag).
// Needs the MELD text of the offline assets (skipped, with the reason, where absent); the cross-self case runs on
// generated tones (test/helpers/tone-ravdess.ts).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyMeldCache } from '../helpers/tiny-meld.ts';
import { decodeStream, FINETUNED_FILE, FINETUNED_LAST_FILE, openDataset, OrtBackend, Predictor, writeWavF32 } from '@emofuse/model';
import { decodeSafetensors, encodeSafetensors } from '../../packages/model/src/cache/safetensors.ts';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import { bin, buildCli, emofuse } from '../helpers/cli.ts';
import { toneRavdessCache } from '../helpers/tone-ravdess.ts';

const meld = join(modelSettings.assetsDir, 'meld-text');
const have = existsSync(join(meld, 'dev_sent_emo.csv'));
const bert = join(import.meta.dirname, '../fixtures/models/tiny-random-bert');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-cli-finetune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!have)(`train --finetune-text, then eval / predict / export${have ? '' : ` (skipped: no ${meld})`}`, () => {
  const cache = join(tmp, 'cache');
  const data = join(tmp, 'meld');
  beforeAll(async () => {
    await tinyMeldCache(tmp, cache, bert);
    await buildCli();
  }, 180_000);

  const trainArgs = (out: string, k: string, more: string[] = []) => [
    'train',
    '--features',
    cache,
    '--fusion',
    'text',
    '--finetune-text',
    k,
    '--epochs',
    '1',
    '--batch-size',
    '8',
    '--width',
    '16',
    '--heads',
    '2',
    '--lr',
    '1e-3',
    '--text-lr',
    '1e-2',
    '--out',
    join(tmp, out),
    '--no-progress',
    ...more,
  ];
  const train = (out: string, k: string, more: string[] = []) => emofuse(trainArgs(out, k, more));

  it('writes the fine-tuned file; eval and predict read the fine-tuned encoder back (equal probabilities), not a frozen one', async () => {
    const ft = await train('ft', '2');
    expect(ft.code, ft.stderr).toBe(0);
    const file = join(tmp, 'ft', FINETUNED_FILE);
    expect(existsSync(file)).toBe(true);
    expect(ft.stdout).toContain(file);
    const ev = await emofuse(['eval', '--checkpoint', file, '--features', cache, '--split', 'dev', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const report = JSON.parse(ev.stdout) as { n: number; weightedF1: number; probabilities: Record<string, number[]> };
    expect(report.n).toBe(20);
    const ds = openDataset('meld', data, { textOnly: true });
    const [id, probs] = Object.entries(report.probabilities)[0]!;
    const text = ds.items.find((u) => u.id === id)!.text;
    const predict = async (f: string) => {
      const r = await emofuse(['predict', '--checkpoint', f, '--text', text, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return Object.values((JSON.parse(r.stdout) as { probabilities: Record<string, number> }).probabilities);
    };
    const p = await predict(file);
    for (const [k, q] of p.entries()) expect(q).toBeCloseTo(probs[k]!, 5); // another batch (padding): equal to float32 rounding
    // the same head recipe on the frozen encoder (--finetune-text 0) predicts otherwise
    const frozen = await train('frozen', '0');
    expect(frozen.code, frozen.stderr).toBe(0);
    const q = await predict(join(tmp, 'frozen', FINETUNED_FILE));
    expect(Math.max(...q.map((v, k) => Math.abs(v - p[k]!)))).toBeGreaterThan(1e-3);
    // export writes the encoder into the graph (token ids in), checked against our forward on the dev texts
    const onnx = join(tmp, 'ft.onnx');
    const ex = await emofuse(['export', '--checkpoint', file, '--onnx', onnx, '--features', cache, '--split', 'dev', '--json']);
    expect(ex.code, ex.stderr).toBe(0);
    const res = JSON.parse(ex.stdout) as { inputs: string[]; tokenizer: string; check: Record<string, number | boolean> };
    expect(res.inputs).toEqual(['input_ids', 'text_mask', 'audio', 'audio_mask']);
    expect(res.tokenizer).toBe(`bert:${bert}`);
    expect(res.check).toMatchObject({ utterances: 20, ok: true, argmaxDisagreements: 0 });
    expect(res.check.maxAbsProbabilities).toBeLessThan(1e-5);
    expect(existsSync(onnx)).toBe(true);
    // on seeded random token rows without --features; a split the cache lacks: exit 2, naming it
    const rnd = await emofuse(['export', '--checkpoint', file, '--onnx', join(tmp, 'ft2.onnx')]);
    expect(rnd.code, rnd.stderr).toBe(0);
    expect(rnd.stdout).toMatch(/check: 32 token rows \(32 seeded random token rows/);
    const bad = await emofuse(['export', '--checkpoint', file, '--onnx', join(tmp, 'ft3.onnx'), '--features', cache, '--split', 'test']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--split test: .* has splits train, dev/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 300_000);

  it('--stop-after-steps then --resume: the files equal an uninterrupted run byte for byte; a new run over it is refused', async () => {
    const more = ['--epochs', '2', '--layer-decay', '0.8'];
    const straight = await train('resume-straight', 'all', more);
    expect(straight.code, straight.stderr).toBe(0);
    const stopped = await train('resume', 'all', [...more, '--stop-after-steps', '3']); // mid-epoch 1 (5 steps an epoch)
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toMatch(/stopped at step 3 \(.*finetuned-text-last\.safetensors saved\)\. Continue with:\n.*--resume/);
    expect(stopped.stderr).not.toContain('--stop-after-steps');
    const again = await train('resume', 'all', more);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds a fine-tuning run.*--resume.*--force/);
    const resumed = await train('resume', 'all', [...more, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('(resuming)');
    for (const f of [FINETUNED_FILE, FINETUNED_LAST_FILE])
      expect(readFileSync(join(tmp, 'resume', f)).equals(readFileSync(join(tmp, 'resume-straight', f))), f).toBe(true);
    const other = await train('resume', 'all', ['--epochs', '3', '--layer-decay', '0.8', '--resume']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/started with --epochs 2, now 3: give the run's value/);
  }, 300_000);

  it('Ctrl-C after an epoch saves the state and exits 130; the printed command resumes to the uninterrupted run exactly', async () => {
    const more = ['--epochs', '8', '--layer-decay', '0.8'];
    const straight = await train('sig-straight', '2', more);
    expect(straight.code, straight.stderr).toBe(0);
    const out = join(tmp, 'sig');
    const env = { ...process.env };
    delete env.EMOFUSE_DEBUG;
    const child = spawn(process.execPath, [bin, ...trainArgs('sig', '2', more)], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let [stdout, stderr, sent] = ['', '', false];
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!sent && /^epoch 1:/m.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(130);
    const stop = /stopped at step (\d+) \(.*finetuned-text-last\.safetensors saved\)\. Continue with:\n\s+emofuse (.*)/.exec(stderr);
    expect(stop, stderr).not.toBeNull();
    expect(Number(stop![1])).toBeLessThan(40); // before the last of 8 x 5 steps
    expect(stop![2]).toContain('--resume');
    const resumed = await emofuse(stop![2]!.split(' ')); // the printed command (its arguments need no shell quoting here)
    expect(resumed.code, resumed.stderr).toBe(0);
    for (const f of [FINETUNED_FILE, FINETUNED_LAST_FILE])
      expect(readFileSync(join(out, f)).equals(readFileSync(join(tmp, 'sig-straight', f))), f).toBe(true);
  }, 300_000);

  it('joined caches (--features A,B) under --label-map and a cross-self head: MELD texts without audio, tones with it', async () => {
    const tones = await toneRavdessCache(join(tmp, 'joined-tones'));
    const out = join(tmp, 'joined');
    const args = ['--features', `${cache},${tones}`, '--label-map', 'meld7', '--fusion', 'cross-self', '--finetune-text', '1'];
    const more = ['--epochs', '1', '--batch-size', '8', '--width', '16', '--heads', '2', '--out', out, '--no-progress', '--json'];
    const r = await emofuse(['train', ...args, ...more]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ epochs: 1, interrupted: false, steps: 7 }); // (40 MELD + 12 tones) / 8
    const file = join(out, FINETUNED_FILE);
    const meta = decodeSafetensors(readFileSync(file), file).metadata;
    expect(JSON.parse(meta.classNames!)).toEqual(['neutral', 'joy', 'surprise', 'anger', 'sadness', 'disgust', 'fear']);
    expect(JSON.parse(meta.head!)).toMatchObject({ fusion: 'cross-self', numClasses: 7 });
    // eval reads the joined caches through the label map the model records (MELD's 20 dev utterances and 4 tones)
    const ev = await emofuse(['eval', '--checkpoint', file, '--features', `${cache},${tones}`, '--split', 'dev', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    expect((JSON.parse(ev.stdout) as { n: number }).n).toBe(24);
    // so does export's check (the texts and, for the tones, their audio)
    const ex = await emofuse([
      'export',
      '--checkpoint',
      file,
      '--onnx',
      join(tmp, 'joined.onnx'),
      '--features',
      `${cache},${tones}`,
      '--split',
      'dev',
    ]);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toMatch(/check: 24 token rows .*top class differs on 0/s);
    // a resume must read the utterances the same way: another label map is refused, naming the flag
    const again = await emofuse(['train', ...args.map((a) => (a === 'meld7' ? 'meld7:calm=drop' : a)), ...more, '--resume']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/started with --label-map "meld7", now "meld7:calm=drop"/);
  }, 300_000);

  it('refuses what it cannot fine-tune: another --fusion, --synthetic, a flag of the frozen recipe (exit 2, naming the flag)', async () => {
    const cases: [string[], RegExp][] = [
      [['--features', cache, '--fusion', 'cross-self', '--finetune-text', '2'], /--fusion cross-self: .* has no audio features/],
      [['--features', cache, '--fusion', 'audio', '--finetune-text', '2'], /--finetune-text trains the text encoder under a head/],
      [
        ['--synthetic', '--fusion', 'text', '--finetune-text', 'all'],
        /--finetune-text needs --features <feature cache folder\[,another,...\]>/,
      ],
      [['--features', cache, '--fusion', 'text', '--finetune-text', '9'], /--finetune-text 9: .* has 2 blocks/],
      [['--features', cache, '--fusion', 'text', '--finetune-text', '1', '--speaker-norm', 'on'], /--speaker-norm does not apply/],
      [['--features', cache, '--fusion', 'text', '--finetune-text', 'two'], /--finetune-text must be an integer/],
      [['--features', cache, '--fusion', 'text', '--finetune-text', '1', '--layer-decay', '1.5'], /--layer-decay must lie in \(0, 1\]/],
    ];
    for (const [args, message] of cases) {
      const r = await emofuse(['train', ...args, '--out', join(tmp, 'refused'), '--no-progress']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  }, 120_000);
});

describe('train --finetune-text --fusion cross-self on a text + audio cache, then eval / export / predict', () => {
  const dir = join(tmp, 'tones');
  let toneCache = '';
  beforeAll(async () => {
    toneCache = await toneRavdessCache(dir);
    await buildCli();
  }, 180_000);

  it('trains encoder and a cross-self head; eval, export and predict read the audio beside the text (predict: the recording)', async () => {
    const out = join(dir, 'run');
    const args = ['--fusion', 'cross-self', '--finetune-text', '1', '--epochs', '2', '--batch-size', '4', '--width', '16'];
    const tr = await emofuse([
      'train',
      '--features',
      toneCache,
      ...args,
      '--heads',
      '2',
      '--text-lr',
      '1e-2',
      '--out',
      out,
      '--no-progress',
    ]);
    expect(tr.code, tr.stderr).toBe(0);
    expect(tr.stdout).toContain('under a cross-self head');
    const file = join(out, FINETUNED_FILE);
    const ev = await emofuse(['eval', '--checkpoint', file, '--features', toneCache, '--split', 'dev', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    expect((JSON.parse(ev.stdout) as { n: number }).n).toBe(4);
    const ex = await emofuse([
      'export',
      '--checkpoint',
      file,
      '--onnx',
      join(dir, 'm.onnx'),
      '--features',
      toneCache,
      '--split',
      'dev',
      '--json',
    ]);
    expect(ex.code, ex.stderr).toBe(0);
    const res = JSON.parse(ex.stdout) as { fusion: string; check: { ok: boolean; utterances: number; source: string } };
    expect(res).toMatchObject({ fusion: 'cross-self', check: { ok: true, utterances: 4 } });
    expect(res.check.source).toContain('and their audio');
    const rnd = await emofuse(['export', '--checkpoint', file, '--onnx', join(dir, 'm2.onnx')]);
    expect(rnd.code, rnd.stderr).toBe(0);
    expect(rnd.stdout).toContain('with random audio');
    // predict on words alone: this head reads audio too (exit 2, naming the flag)
    const pr = await emofuse(['predict', '--checkpoint', file, '--text', 'Kids are talking by the door']);
    expect(pr.code).toBe(2);
    expect(pr.stderr).toMatch(/--audio <file> is required: .* reads audio as well as text/);
    expect(pr.stderr).not.toMatch(/\n\s+at /);
    // predict --manifest on the dev clips (their words and recordings): what the library's Predictor gives in-process
    // (which equals eval on the same features: test/model/finetune-predict.test.ts), and eval's classes on the cache
    const items = openDataset('ravdess', join(dir, 'ravdess')).items.filter((u) => u.split === 'dev');
    const manifest = join(dir, 'dev.jsonl');
    writeFileSync(manifest, items.map((u) => JSON.stringify({ id: u.id, audio: u.audio, text: u.text })).join('\n'));
    const pm = await emofuse(['predict', '--checkpoint', file, '--manifest', manifest, '--json']);
    expect(pm.code, pm.stderr).toBe(0);
    const got = JSON.parse(pm.stdout) as { id: string; probabilities: Record<string, number> }[];
    expect(got.map((p) => p.id)).toEqual(items.map((u) => u.id));
    const be = OrtBackend.create({ threads: 1 });
    let lib: number[][];
    try {
      const predictor = await Predictor.open(be, file);
      lib = (await predictor.predict(items.map((u) => ({ id: u.id, audio: u.audio!, text: u.text })))).map((p) =>
        Object.values(p.probabilities),
      );
      await predictor.dispose();
    } finally {
      await be.destroy();
    }
    const cli = got.map((p) => Object.values(p.probabilities));
    const diff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((r, i) => r.map((v, k) => Math.abs(v - b[i]![k]!))));
    expect(diff(cli, lib)).toBeLessThan(1e-7);
    const evProbs = (JSON.parse(ev.stdout) as { probabilities: Record<string, number[]> }).probabilities;
    const vsCache = diff(
      cli,
      items.map((u) => evProbs[u.id]!),
    );
    console.log(
      `predict --manifest vs eval on the float16 cache, ${cli.length} dev clips: max |probability diff| ${vsCache.toExponential(2)}`,
    );
    // one clip through --audio and --text: the manifest's row for it (another batch: equal to float32 rounding)
    const one = await emofuse(['predict', '--checkpoint', file, '--audio', items[1]!.audio!, '--text', items[1]!.text, '--json']);
    expect(one.code, one.stderr).toBe(0);
    const p1 = Object.values((JSON.parse(one.stdout) as { probabilities: Record<string, number> }).probabilities);
    expect(diff([p1], [cli[1]!])).toBeLessThan(1e-6);
    // a delta whose base model (its encoder's files) is gone: exit 2, naming the file and the conversion command
    const d = decodeSafetensors(readFileSync(file), file);
    const gone = join(dir, 'gone.safetensors');
    writeFileSync(gone, encodeSafetensors(Object.fromEntries(d.tensors), { ...d.metadata, modelSpec: join(dir, 'no-model') }));
    const pg = await emofuse(['predict', '--checkpoint', gone, '--audio', items[0]!.audio!, '--text', 'hello']);
    expect(pg.code).toBe(2);
    expect(pg.stderr).toMatch(/gone\.safetensors: .*no-model.*python3 scripts\/convert_minilm\.py/s);
    expect(pg.stderr).not.toMatch(/\n\s+at /);
  }, 300_000);

  const speech = join(modelSettings.assetsDir, 'ravdess/audio/Actor_01/03-01-05-01-01-01-01.flac');
  const noSpeech = existsSync(speech) ? '' : ` (skipped: no ${speech})`;
  it.skipIf(noSpeech !== '')(
    `analyze --checkpoint <fine-tuned cross-self delta>: each segment is what predict gives on its cut${noSpeech}`,
    async () => {
      const file = join(dir, 'run', FINETUNED_FILE); // the test above trained it
      expect(existsSync(file)).toBe(true);
      const srt = join(dir, 'speech.srt');
      writeFileSync(srt, '1\n00:00:00,000 --> 00:00:05,000\nKids are talking by the door\n');
      const out = join(dir, 'analyzed');
      const an = await emofuse(['analyze', speech, '--out', out, '--checkpoint', file, '--text-from', srt]);
      expect(an.code, an.stderr).toBe(0);
      const segs = readFileSync(join(out, 'segments.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { status: string; start: number; end: number; text: string; probabilities: Record<string, number> });
      const ok = segs.filter((x) => x.status === 'ok');
      expect(ok.length).toBeGreaterThanOrEqual(1);
      const parts: Float32Array[] = [];
      for await (const x of decodeStream(speech)) parts.push(x);
      const all = Float32Array.from(parts.flatMap((x) => [...x]));
      let worst = 0;
      for (const [i, x] of ok.entries()) {
        const cut = join(dir, `cut-${i}.wav`);
        writeWavF32(cut, all.slice(Math.round(x.start * 16_000), Math.round(x.end * 16_000)));
        const pr = await emofuse(['predict', '--checkpoint', file, '--audio', cut, '--text', x.text, '--json']);
        expect(pr.code, pr.stderr).toBe(0);
        const p = (JSON.parse(pr.stdout) as { probabilities: Record<string, number> }).probabilities;
        for (const [k, q] of Object.entries(x.probabilities)) worst = Math.max(worst, Math.abs(q - p[k]!));
      }
      console.log(`analyze vs predict on the cuts, ${ok.length} segment(s): max |probability diff| ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-5);
    },
    300_000,
  );
  const whisper = join(modelSettings.modelsDir, 'Xenova/whisper-tiny.en/onnx/decoder_model_merged.onnx');
  const why = !existsSync(speech) ? ` (skipped: no ${speech})` : !existsSync(whisper) ? ` (skipped: no ${whisper})` : '';
  it.skipIf(why !== '')(
    `predict --audio without --text on a fine-tuned cross-self delta: Whisper hears the words${why}`,
    async () => {
      const file = join(dir, 'run', FINETUNED_FILE);
      const pr = await emofuse(['predict', '--checkpoint', file, '--audio', speech, '--json'], {
        env: { EMOFUSE_OFFLINE: '1' },
        timeoutMs: 300_000,
      });
      expect(pr.code, pr.stderr).toBe(0);
      const p = JSON.parse(pr.stdout) as { text: string; transcribed: boolean; probabilities: Record<string, number> };
      expect(p.transcribed).toBe(true);
      expect(p.text.toLowerCase()).toMatch(/door/);
      // the words it heard, given as --text: the same prediction
      const given = await emofuse(['predict', '--checkpoint', file, '--audio', speech, '--text', p.text, '--json']);
      expect(given.code, given.stderr).toBe(0);
      const q = (JSON.parse(given.stdout) as { probabilities: Record<string, number> }).probabilities;
      for (const [k, v] of Object.entries(p.probabilities)) expect(Math.abs(v - q[k]!), k).toBeLessThan(1e-6);
    },
    300_000,
  );
});
