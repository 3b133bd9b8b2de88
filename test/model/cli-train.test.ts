// `emofuse train`, `eval` and `ablate` as a user runs them (the bundled CLI, a separate process): a tiny run on the
// generated task on both backends, eval's files (metrics JSON, confusion JSON/SVG/PNG), an ablation table, and
// bad input stopping with a clear message and exit code 2.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '@emofuse/model';
import { bin, buildCli, emofuse } from '../helpers/cli.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'emofuse-cli-'));

const tiny = ['--synthetic', '--width', '16', '--heads', '2', '--epochs', '2', '--batch-size', '32', '--lr', '3e-3', '--no-progress'];

beforeAll(async () => {
  await buildCli();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('emofuse train / eval / ablate', () => {
  for (const backend of ['cpu', 'wgsl']) {
    it(`train --backend ${backend} writes checkpoints and a metrics log; eval writes metrics and the confusion picture`, async (ctx) => {
      const out = join(dir, backend);
      const t = await emofuse(['train', ...tiny, '--backend', backend, '--out', out, '--json']);
      if (backend === 'wgsl' && t.code === 2 && /adapter/i.test(t.stderr) && process.env.EMOFUSE_REQUIRE_GPU !== '1')
        return ctx.skip(`no WebGPU adapter: ${t.stderr.trim()}`);
      expect(t.code, t.stderr).toBe(0);
      const summary = JSON.parse(t.stdout);
      expect(summary).toMatchObject({ steps: 16, epochs: 2 });
      expect(summary.config).toMatchObject({ fusion: 'cross-self', width: 16, heads: 2, numClasses: 4 });
      for (const f of ['best.safetensors', 'last.safetensors', 'metrics.jsonl']) expect(existsSync(join(out, f))).toBe(true);
      expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
      const e = await emofuse([
        'eval',
        '--checkpoint',
        join(out, 'best.safetensors'),
        '--synthetic',
        '--split',
        'test',
        '--backend',
        backend,
        '--json',
      ]);
      expect(e.code, e.stderr).toBe(0);
      const m = JSON.parse(e.stdout);
      expect(m.n).toBe(64);
      expect(m.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(64);
      expect(m.perClass).toHaveLength(4);
      for (const f of ['metrics.json', 'confusion.json', 'confusion.svg', 'confusion.png', 'predictions.jsonl']) {
        expect(existsSync(join(out, 'eval-test', f)), f).toBe(true);
      }
      expect(
        readFileSync(join(out, 'eval-test', 'confusion.png'))
          .subarray(1, 4)
          .toString(),
      ).toBe('PNG');
    });
  }

  it('ablate prints one table and writes it as Markdown and JSON', async () => {
    const out = join(dir, 'ablate');
    const r = await emofuse(['ablate', ...tiny, '--epochs', '1', '--backend', 'cpu', '--variants', 'cross-self,concat,text', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fusion\s+weighted F1\s+macro F1\s+accuracy\s+params\s+train s/);
    for (const v of ['cross-self', 'concat', 'text', 'linear']) expect(r.stdout).toMatch(new RegExp(`^${v}\\s+\\d+\\.\\d`, 'm'));
    const j = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8'));
    // the linear floor is always added
    expect(j.rows.map((x: { fusion: string }) => x.fusion)).toEqual(['cross-self', 'concat', 'text', 'linear']);
    expect(readFileSync(join(out, 'ablation.md'), 'utf8')).toContain('| cross-self |');
  });

  it('bad input stops before training with the file, the field and exit code 2', async () => {
    const p = join(dir, 'bad.json');
    writeFileSync(
      p,
      JSON.stringify({
        classNames: ['a', 'b'],
        textDim: 2,
        audioDim: 2,
        splits: { train: [{ id: 'x', label: 'c', text: [[1, 2]], audio: [[1, 2]] }] },
      }),
    );
    const r = await emofuse(['train', '--features', p, '--backend', 'cpu', '--out', join(dir, 'bad')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${p}: splits.train[0] (id 'x'): label 'c' is not one of classNames (a, b)`);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    const none = await emofuse(['train', '--backend', 'cpu']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no data: pass --features/);
    const heads = await emofuse(['train', '--synthetic', '--backend', 'cpu', '--width', '30', '--heads', '4', '--out', join(dir, 'h')]);
    expect(heads.code).toBe(2);
    expect(heads.stderr).toMatch(/width 30 must be divisible by heads 4/);
  });
});

describe('emofuse predict', () => {
  it('classifies one utterance with a checkpoint trained on extracted features (hash + logmel)', async (ctx) => {
    const which = await run('sh', ['-c', 'command -v espeak-ng']).catch(() => null);
    if (!which) return ctx.skip('espeak-ng is not installed (make-dataset needs it)');
    const data = join(dir, 'ctl');
    const cache = join(dir, 'ctl-cache');
    const ckpt = join(dir, 'ctl-run');
    for (const args of [
      ['make-dataset', 'controlled', '--out', data, '--size', '24', '--no-progress'],
      ['extract', '--dataset', 'controlled', '--data', data, '--out', cache, '--no-progress'],
      [
        'train',
        '--features',
        cache,
        '--backend',
        'cpu',
        '--width',
        '16',
        '--heads',
        '2',
        '--epochs',
        '1',
        '--batch-size',
        '8',
        '--out',
        ckpt,
        '--no-progress',
      ],
    ]) {
      const r = await emofuse(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
    }
    const row = JSON.parse(readFileSync(join(data, 'manifest.jsonl'), 'utf8').split('\n')[0]!);
    const p = await emofuse([
      'predict',
      '--checkpoint',
      join(ckpt, 'best.safetensors'),
      '--text',
      row.text,
      '--audio',
      join(data, row.audio),
      '--backend',
      'cpu',
      '--json',
    ]);
    expect(p.code, p.stderr).toBe(0);
    const out = JSON.parse(p.stdout);
    expect(['content', 'excited', 'sad', 'angry']).toContain(out.predicted);
    const total = Object.values(out.probabilities as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 5);
    const missing = await emofuse([
      'predict',
      '--checkpoint',
      join(ckpt, 'best.safetensors'),
      '--text',
      'hi',
      '--audio',
      join(dir, 'nope.wav'),
      '--backend',
      'cpu',
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.wav/);
  });
});

describe('emofuse train killed mid-epoch', () => {
  for (const backend of ['cpu', 'wgsl']) {
    it(
      `${backend}: SIGKILL mid-epoch, then --resume: ` + `the final parameters and optimizer state equal an uninterrupted run's exactly`,
      async (ctx) => {
        const args = [...tiny, '--epochs', '3', '--batch-size', '16', '--save-every', '1', '--backend', backend]; // 16 steps per epoch
        const straight = join(dir, `straight-${backend}`);
        const s = await emofuse(['train', ...args, '--out', straight]);
        if (backend === 'wgsl' && s.code === 2 && /adapter/i.test(s.stderr) && process.env.EMOFUSE_REQUIRE_GPU !== '1')
          return ctx.skip(`no WebGPU adapter: ${s.stderr.trim()}`);
        expect(s.code, s.stderr).toBe(0);
        const killed = join(dir, `killed-${backend}`);
        const child = spawn(process.execPath, [bin, 'train', ...args, '--out', killed], { stdio: 'ignore' });
        const exited = new Promise<string | null>((res) => child.on('exit', (_code, signal) => res(signal)));
        let step = 0;
        while (step < 20) {
          await new Promise((r) => setTimeout(r, 10));
          try {
            step = JSON.parse(readSafetensors(join(killed, 'last.safetensors')).metadata.emofuse!).step;
          } catch {
            // not written yet (or being renamed into place)
          }
          if (child.exitCode !== null) break;
        }
        child.kill('SIGKILL');
        expect(await exited, 'the run was killed, not finished').toBe('SIGKILL');
        const at = JSON.parse(readSafetensors(join(killed, 'last.safetensors')).metadata.emofuse!).step;
        expect(at % 16, `killed mid-epoch (step ${at})`).not.toBe(0);
        const r = await emofuse(['train', ...args, '--out', killed, '--resume', '--json']);
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).steps).toBe(48);
        const a = readSafetensors(join(straight, 'last.safetensors')).tensors;
        const b = readSafetensors(join(killed, 'last.safetensors')).tensors;
        expect([...b.keys()]).toEqual([...a.keys()]);
        for (const [name, t] of a) expect(Buffer.compare(Buffer.from(t.data.buffer), Buffer.from(b.get(name)!.data.buffer)), name).toBe(0);
        // The metrics log has each epoch once, with the straight run's numbers (all but the wall-clock seconds and the
        // run id, one per run: the killed run keeps its own across the resume).
        const log = (d: string) =>
          readFileSync(join(d, 'metrics.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => ({ ...JSON.parse(l), seconds: 0, run: '' }));
        expect(
          new Set(
            readFileSync(join(killed, 'metrics.jsonl'), 'utf8')
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l).run),
          ).size,
        ).toBe(1);
        expect(log(killed)).toEqual(log(straight));
        expect(log(killed).map((e) => e.epoch)).toEqual([1, 2, 3]);
      },
    );
  }
});
