// The controlled bimodal benchmark: 4 classes = 2 text cues (valence: positive / negative words in the written
// text) x 2 prosody cues (arousal: calm / aroused speech), so either modality alone caps at 50% accuracy and only a
// model that fuses both can reach 100%.
//
//   label     text cue   prosody cue
//   content   positive   calm      (low pitch, slow, soft)
//   excited   positive   aroused   (high pitch, fast, loud)
//   sad       negative   calm
//   angry     negative   aroused
//
// Leaks designed out:
// - The audio never speaks the text: each clip speaks one or two neutral carrier sentences drawn independently of
//   the label, so the audio branch cannot read the text cue from the speech. Its length depends on the carrier and
//   the speaking rate only (rate is part of the prosody cue, which audio is meant to carry).
// - The text is drawn from the valence templates only, with fillers and optional openers independent of the label,
//   so it says nothing about prosody and its length does not give the label away.
// - Voices: 6 espeak-ng accents x 10 voice variants = 60 speakers; the splits are speaker-independent
//   (train/dev/test speakers disjoint); pitch/rate/amplitude are drawn per clip from wide ranges per prosody cue.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tempPathFor, writeFileAtomic } from '../io.ts';
import { cleanOrphanedTemps } from '../train/run-folder.ts';
import { join } from 'node:path';
import type { ManifestRow } from './manifest.ts';
import { mulberry32 } from '@emofuse/kernels';

export const CONTROLLED_CLASSES = ['content', 'excited', 'sad', 'angry'] as const;

const ACCENTS = ['en-us', 'en-gb', 'en-gb-scotland', 'en-gb-x-rp', 'en-029', 'en-gb-x-gbclan'];
const VARIANTS = ['m1', 'm2', 'm3', 'm4', 'm7', 'f1', 'f2', 'f3', 'f4', 'f5'];

const CARRIERS = [
  'The train leaves the station at seven in the morning.',
  'Please put the blue folder on the second shelf.',
  'The meeting moved to the room at the end of the hall.',
  'We will need three more chairs for the table.',
  'The report is due on the first day of next month.',
  'Turn left at the bakery and walk two blocks.',
  'The kettle is on the counter next to the window.',
  'My brother lives in a small town by the river.',
  'The package arrived on Tuesday afternoon.',
  'There are twelve boxes in the back of the van.',
  'The library closes at nine on weekdays.',
  'She wrote the numbers down on a yellow card.',
  'The bus stops outside the post office.',
  'They painted the fence last summer.',
  'Bring a pencil and a notebook to the class.',
  'The garden has four rows of carrots.',
  'The clock in the kitchen is ten minutes slow.',
  'He parked the car behind the old warehouse.',
  'The window in the attic faces north.',
  'We counted the coins on the kitchen table.',
  'The ferry crosses the bay twice a day.',
  'Put the plates in the cupboard above the sink.',
  'The printer on the third floor needs paper.',
  'The road to the village runs along the coast.',
];

const POSITIVE = [
  'I am so happy about {x}.',
  '{X} turned out wonderful.',
  'What a great {x}, I love it.',
  'I really enjoyed {x}.',
  '{X} made my whole week better.',
  'Honestly, {x} was a delight.',
  'I am thrilled with {x}.',
  'Everything about {x} was lovely.',
];
const NEGATIVE = [
  'I am so upset about {x}.',
  '{X} turned out awful.',
  'What a terrible {x}, I hate it.',
  'I really disliked {x}.',
  '{X} ruined my whole week.',
  'Honestly, {x} was a disaster.',
  'I am fed up with {x}.',
  'Everything about {x} was miserable.',
];
const THINGS = [
  'the trip',
  'the new job',
  'the dinner',
  'the concert',
  'the move',
  'the game',
  'the party',
  'the test results',
  'the weekend',
  'the interview',
  'the present',
  'the news',
  'the holiday',
  'the film',
  'the visit',
  'the project',
];
const OPENERS = ['', '', 'Well, ', 'You know, ', 'So, ', 'Listen, '];

/** The word lists the benchmark draws from (exported for the leak tests). */
export const CONTROLLED_VOCAB = { carriers: CARRIERS, positive: POSITIVE, negative: NEGATIVE, things: THINGS, openers: OPENERS } as const;

/** Per prosody cue: espeak-ng pitch (0-99), speed (words/min), amplitude (0-200), drawn uniformly per clip. */
const PROSODY = {
  calm: { pitch: [10, 40], speed: [115, 150], amplitude: [50, 90] },
  aroused: { pitch: [60, 95], speed: [185, 235], amplitude: [140, 190] },
} as const;

export interface ControlledItem extends ManifestRow {
  valence: 'positive' | 'negative';
  arousal: 'calm' | 'aroused';
  spoken: string;
  voice: string;
  pitch: number;
  speed: number;
  amplitude: number;
}

export interface ControlledOptions {
  /** Number of utterances (rounded up to a multiple of 4; classes balanced). Default 480. */
  size?: number;
  seed?: number;
}

/** Draws the benchmark's items (text, carrier, voice, prosody, split) without synthesising anything. */
export function planControlled(options: ControlledOptions = {}): ControlledItem[] {
  const size = Math.ceil((options.size ?? 480) / 4) * 4;
  const rand = mulberry32(options.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const uniform = ([lo, hi]: readonly [number, number]) => Math.round(lo + rand() * (hi - lo));
  // Speaker-independent splits: shuffle the 60 voices, 70% train, 15% dev, 15% test.
  const voices = ACCENTS.flatMap((a) => VARIANTS.map((v) => `${a}+${v}`));
  for (let i = voices.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [voices[i], voices[j]] = [voices[j]!, voices[i]!];
  }
  const splitOf = new Map(voices.map((v, i) => [v, i < 42 ? 'train' : i < 51 ? 'dev' : 'test']));
  const items: ControlledItem[] = [];
  for (let i = 0; i < size; i++) {
    const label = CONTROLLED_CLASSES[i % 4]!;
    const valence = label === 'content' || label === 'excited' ? 'positive' : 'negative';
    const arousal = label === 'content' || label === 'sad' ? 'calm' : 'aroused';
    const thing = pick(THINGS);
    const template = pick(valence === 'positive' ? POSITIVE : NEGATIVE);
    let text = template.replace('{x}', thing).replace('{X}', thing[0]!.toUpperCase() + thing.slice(1));
    const opener = pick(OPENERS);
    if (opener) text = opener + (text.startsWith('I ') ? text : text[0]!.toLowerCase() + text.slice(1));
    const spoken = rand() < 0.5 ? pick(CARRIERS) : `${pick(CARRIERS)} ${pick(CARRIERS)}`;
    const voice = pick(voices);
    const p = PROSODY[arousal];
    const id = `ctl${String(i).padStart(5, '0')}`;
    items.push({
      id,
      text,
      audio: `wavs/${id}.wav`,
      label,
      split: splitOf.get(voice)!,
      speaker: voice,
      valence,
      arousal,
      spoken,
      voice,
      pitch: uniform(p.pitch),
      speed: uniform(p.speed),
      amplitude: uniform(p.amplitude),
    });
  }
  return items;
}

export class SynthesiserMissingError extends Error {
  override name = 'SynthesiserMissingError';
}

export function hasEspeak(): boolean {
  const r = spawnSync('espeak-ng', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function synthesise(item: ControlledItem, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [
      '-v',
      item.voice,
      '-p',
      String(item.pitch),
      '-s',
      String(item.speed),
      '-a',
      String(item.amplitude),
      '-w',
      file,
      item.spoken,
    ];
    const child = spawn('espeak-ng', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`espeak-ng ${args.join(' ')} failed (${code}): ${err.trim()}`)),
    );
  });
}

export interface GenerateResult {
  manifest: string;
  items: ControlledItem[];
  seconds: number;
}

/**
 * Synthesises the benchmark into `outDir`: wavs/<id>.wav (espeak-ng, 22.05 kHz mono) and manifest.jsonl
 * (id, text, audio, label, split, speaker, plus the cues and synthesis settings). Existing wavs are reused, so an
 * interrupted run continues. The manifest is written last, through a temp file renamed into place.
 */
export async function generateControlled(
  outDir: string,
  options: ControlledOptions & { concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<GenerateResult> {
  if (!hasEspeak()) {
    throw new SynthesiserMissingError(
      "the controlled benchmark is spoken by espeak-ng, which is not installed: apt-get install espeak-ng (or run 'bash scripts/setup.sh')",
    );
  }
  const t0 = performance.now();
  const items = planControlled(options);
  mkdirSync(join(outDir, 'wavs'), { recursive: true });
  for (const d of [outDir, join(outDir, 'wavs')]) cleanOrphanedTemps(d); // *.tmp-<pid> of a killed run
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      const file = join(outDir, item.audio);
      if (!existsSync(file)) {
        const tmp = tempPathFor(file, '.wav');
        await synthesise(item, tmp);
        renameSync(tmp, file);
      }
      options.onProgress?.(++done, items.length);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  const manifest = join(outDir, 'manifest.jsonl');
  writeFileAtomic(join(outDir, 'classes.json'), JSON.stringify(CONTROLLED_CLASSES) + '\n');
  writeFileAtomic(manifest, items.map((it) => JSON.stringify(it)).join('\n') + '\n');
  writeFileSync(
    join(outDir, 'README.md'),
    `# emofuse controlled bimodal benchmark\n\nGenerated by \`emofuse make-dataset controlled\` (seed ${options.seed ?? 1}, ` +
      `${items.length} utterances).\n` +
      `Classes: content (positive text, calm voice), excited (positive, aroused), sad (negative, calm), angry (negative, aroused).\n` +
      `The \`text\` field is the written cue; the audio speaks an unrelated neutral carrier sentence (\`spoken\`) in a calm or ` +
      `aroused voice.\n` +
      `Either modality alone can reach only 50% accuracy. Splits are speaker-independent.\n`,
  );
  rmSync(join(outDir, '.partial'), { force: true });
  return { manifest, items, seconds: (performance.now() - t0) / 1000 };
}
