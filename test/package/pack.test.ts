// The published packages as a user gets them: `npm pack` @emofuse/kernels and @emofuse/model (their built dist/,
// no TypeScript sources), `npm install --offline` the tarballs into an empty project, then run a ten-line Node
// script that classifies with the public API, and `tsc --noEmit` a TypeScript file that uses its types.
// No registry is needed: the project's third-party dependencies are `file:` links to this repo's node_modules
// (npm still checks that each satisfies the range the tarballs declare, and fails offline if one does not), and
// the project lives in the temp folder, so an import the packages do not declare would not resolve.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import { CpuBackend, FusionModel, Predictor, saveCheckpoint, type FusionConfig } from '@emofuse/model';
import { browserBundleProblems } from './browser-bundle.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGES = ['kernels', 'model'];
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-pack-'));
const project = join(tmp, 'project');
const CLASSES = ['angry', 'happy', 'sad'];
const TEXT = 'What a wonderful surprise, I love it.';
/** Half a second of a 220 Hz tone at 16 kHz: the clip, as samples and as clip.wav. */
const tone = Float32Array.from({ length: 8000 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / 16_000));

async function sh(cmd: string, args: string[], cwd: string, timeout = 120_000) {
  try {
    return await run(cmd, args, {
      cwd,
      timeout,
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
    });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

beforeAll(async () => {
  // dist/ as `npm test`'s build left it, or rebuilt from the sources when they changed (turbo's cache decides).
  await sh(
    process.execPath,
    [join(root, 'node_modules/turbo/bin/turbo'), 'run', 'build', '--filter=@emofuse/model', '--output-logs=errors-only'],
    root,
    300_000,
  );
  const packed = JSON.parse(
    (await sh('npm', ['pack', '--json', '--pack-destination', tmp, ...PACKAGES.map((p) => `./packages/${p}`)], root)).stdout,
  ) as { name: string; filename: string; files: { path: string }[] }[];
  for (const p of packed) {
    const files = p.files.map((f) => f.path);
    expect(files, `${p.name} ships its built entry`).toContain('dist/index.js');
    expect(
      files.filter((f) => f.startsWith('src/')),
      `${p.name} ships no TypeScript sources`,
    ).toEqual([]);
  }
  const dependencies: Record<string, string> = {};
  for (const [i, pkg] of PACKAGES.entries()) {
    const manifest = JSON.parse(readFileSync(join(root, 'packages', pkg, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      if (dep.startsWith('@emofuse/')) continue;
      const installed = [join(root, 'packages', pkg, 'node_modules', dep), join(root, 'node_modules', dep)].find((d) => existsSync(d));
      if (!installed) throw new Error(`${dep} (a dependency of @emofuse/${pkg}) is not installed in this repo: run 'npm ci'`);
      dependencies[dep] = `file:${installed}`;
    }
    dependencies[`@emofuse/${pkg}`] = `file:${join(tmp, packed[i]!.filename)}`;
  }
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'uses-emofuse', private: true, type: 'module', dependencies }, null, 2),
  );
  // --ignore-scripts: nothing runs in the linked folders (npm would `prepare` a linked onnxruntime-node).
  await sh('npm', ['install', '--offline', '--ignore-scripts', '--no-package-lock'], project);

  // A tiny untrained checkpoint on the default encoders (hash text, logmel audio), made by the repo's sources.
  const config: FusionConfig = {
    fusion: 'concat',
    textDim: 256,
    audioDim: 256,
    maxTextLen: 32,
    maxAudioLen: 64,
    width: 8,
    heads: 2,
    layers: 1,
    ffnMult: 2,
    dropout: 0,
    numClasses: 3,
    seed: 1,
  };
  await saveCheckpoint(FusionModel.create(new CpuBackend('f32'), config), join(project, 'tiny.safetensors'), {
    format: 1,
    config,
    classNames: CLASSES,
    step: 0,
    textEncoder: 'hash',
    audioEncoder: 'logmel',
    metrics: {},
    train: {},
  });
  const wav = new WaveFile();
  wav.fromScratch(1, 16_000, '32f', tone);
  writeFileSync(join(project, 'clip.wav'), wav.toBuffer());
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the packed @emofuse/kernels and @emofuse/model, installed into an empty project', () => {
  it('a ten-line Node script loads a checkpoint and classifies a clip (samples and a WAV path) as the sources do', async () => {
    writeFileSync(
      join(project, 'classify.mjs'),
      [
        "import { EmotionClassifier } from '@emofuse/model';",
        "const clf = await EmotionClassifier.load('tiny.safetensors', { backend: 'cpu' });",
        'const audio = Float32Array.from({ length: 8000 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / 16000));',
        `const fromSamples = await clf.classify({ audio, sampleRate: 16000, text: ${JSON.stringify(TEXT)} });`,
        `const fromFile = await clf.classify({ audio: 'clip.wav', text: ${JSON.stringify(TEXT)} });`,
        'await clf.dispose();',
        'const out = (r) => ({ labels: r.labels, probs: Array.from(r.probs), top: r.top, text: r.text, transcribed: r.transcribed });',
        'console.log(JSON.stringify({ fromSamples: out(fromSamples), fromFile: out(fromFile) }));',
      ].join('\n'),
    );
    const { stdout } = await sh(process.execPath, ['classify.mjs'], project);
    const got = JSON.parse(stdout) as Record<
      'fromSamples' | 'fromFile',
      { labels: string[]; probs: number[]; top: { label: string; prob: number }; text: string; transcribed: boolean }
    >;
    // The same checkpoint and clip through the repo's sources (`emofuse predict`'s Predictor).
    const predictor = await Predictor.open(new CpuBackend('f32'), join(project, 'tiny.safetensors'));
    const [want] = await predictor.predict([{ id: 'clip', audio: join(project, 'clip.wav'), text: TEXT }]);
    await predictor.dispose();
    for (const r of [got.fromSamples, got.fromFile]) {
      expect(r.labels).toEqual(CLASSES);
      expect(r.text).toBe(TEXT);
      expect(r.transcribed).toBe(false);
      expect(r.top.label).toBe(want!.predicted);
      for (const [k, p] of r.probs.entries()) {
        expect(Math.abs(p - want!.probabilities[CLASSES[k]!]!), `${CLASSES[k]}: ${p} vs ${want!.probabilities[CLASSES[k]!]}`).toBeLessThan(
          1e-6,
        );
      }
    }
  }, 120_000);

  it('a TypeScript file using the API typechecks against the packed declarations (nodenext resolution)', async () => {
    writeFileSync(
      join(project, 'check.ts'),
      [
        "import { EmotionClassifier, FusionModel, type Classification, type ClassifyInput } from '@emofuse/model';",
        "import { WgslBackend, loadCheckpointBytes } from '@emofuse/model/browser';",
        "import { Gpu, ref } from '@emofuse/kernels';",
        "const input: ClassifyInput = { audio: new Float32Array(16000), sampleRate: 16000, text: 'hello' };",
        "const clf: EmotionClassifier = await EmotionClassifier.load('tiny.safetensors', { backend: 'cpu' });",
        'const r: Classification = await clf.classify(input);',
        'const top: { label: string; prob: number } = r.top;',
        '// @ts-expect-error: probabilities are numbers (this line proves the types are not `any`)',
        'const wrong: string = r.probs[0];',
        'export const used = [top, wrong, FusionModel, WgslBackend, loadCheckpointBytes, Gpu, ref];',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['check.ts'],
      }),
    );
    await sh(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);
  }, 120_000);

  it("the installed '@emofuse/model/browser' (dist/) bundles for the browser with no Node import", async () => {
    expect(await browserBundleProblems('@emofuse/model/browser', { from: project })).toEqual([]);
  });
});
