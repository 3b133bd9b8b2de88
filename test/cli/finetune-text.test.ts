// `emofuse train --finetune-text` and the commands downstream of its file (packages/cli/src/finetune-text.ts): a tiny
// fine-tune of the tiny random BERT fixture on 60 MELD utterances, then eval and predict on the file it writes (the
// fine-tuned encoder, not the frozen one) and export (the encoder in the ONNX graph), --resume, and the combinations train
// refuses (exit 2, naming the flag).
// Needs the MELD text of the offline assets (skipped, with the reason, where absent); the cross-self case runs on
// generated tones (test/helpers/tone-ravdess.ts).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractFeatures, FINETUNED_FILE, FINETUNED_LAST_FILE, openDataset } from '@emofuse/model';
import { decodeSafetensors } from '../../packages/model/src/cache/safetensors.ts';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import { createBertEncoder } from '../../packages/model/src/encoders/transformers.ts';
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
    mkdirSync(data);
    for (const [f, n] of [
      ['train_sent_emo.csv', 41],
      ['dev_sent_emo.csv', 21],
    ] as const)
      writeFileSync(join(data, f), `${readFileSync(join(meld, f), 'utf8').split('\n').slice(0, n).join('\n')}\n`);
    const enc = await createBertEncoder(bert);
    await extractFeatures({ dataset: openDataset('meld', data, { textOnly: true }), textEncoder: enc, audioEncoder: null, out: cache });
    await enc.dispose?.();
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

  it('trains encoder and a cross-self head; eval and export read the cached audio beside the text; predict refuses words', async () => {
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
    const pr = await emofuse(['predict', '--checkpoint', file, '--text', 'Kids are talking by the door']);
    expect(pr.code).toBe(2);
    expect(pr.stderr).toMatch(/fine-tuned cross-self model: it reads cached audio features/);
    expect(pr.stderr).not.toMatch(/\n\s+at /);
  }, 300_000);
});
