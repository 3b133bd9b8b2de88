// Datasets: the generic manifest (CSV and JSONL), EmoDB and MELD from the offline assets, text cleaning, label
// checks with row numbers, and the controlled bimodal benchmark's design (no leaks) and synthesis.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  cleanText,
  CONTROLLED_CLASSES,
  CONTROLLED_VOCAB,
  DatasetError,
  generateControlled,
  hasEspeak,
  MELD_CLASSES,
  openDataset,
  planControlled,
  readEmoDB,
  readManifest,
  readMELD,
} from '../../packages/model/src/datasets/index.ts';
import { loadAudio } from '../../packages/model/src/audio/index.ts';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';

const assets = modelSettings.assetsDir;
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-datasets-'));

function errorOf(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DatasetError) return err;
    throw err;
  }
  throw new Error('expected a DatasetError');
}

describe('cleanText', () => {
  it('repairs UTF-8 read as Windows-1252 and straightens quotes', () => {
    expect(cleanText('I\u00e2\u20ac\u2122m fine')).toBe("I'm fine");
    expect(cleanText('You must\u2019ve had \u201cfun\u201d\u2026')).toBe('You must\'ve had "fun"...');
    expect(cleanText('Nestl\u00e9 Toll House?')).toBe('Nestl\u00e9 Toll House?');
    expect(cleanText('caf\u00c3\u00a9')).toBe('caf\u00e9');
  });
});

describe('manifest', () => {
  it('reads CSV and JSONL with relative audio paths, optional split and speaker-based splits', () => {
    writeFileSync(join(tmp, 'm.csv'), 'id,text,audio,label,split,speaker\na,"Hi, there",a.wav,Joy,train,s1\nb,bye,/abs/b.wav,anger,,s2\n');
    const ds = readManifest(join(tmp, 'm.csv'));
    expect(ds.classNames).toEqual(['anger', 'joy']);
    expect(ds.items.map((i) => [i.id, i.text, i.audio, i.label])).toEqual([
      ['a', 'Hi, there', join(tmp, 'a.wav'), 1],
      ['b', 'bye', '/abs/b.wav', 0],
    ]);
    expect(ds.items[0]!.split).toBe('train');
    expect(['train', 'dev', 'test']).toContain(ds.items[1]!.split);
    writeFileSync(
      join(tmp, 'm.jsonl'),
      '{"id":"x","text":"t","audio":"x.wav","label":"joy"}\n\n{"id":"y","text":"u","audio":"y.wav","label":"joy"}\n',
    );
    expect(readManifest(join(tmp, 'm.jsonl'), { classNames: ['joy', 'fear'] }).items.map((i) => i.label)).toEqual([0, 0]);
  });
  it('stops at an unknown label, a missing field or a duplicate id with the row number', () => {
    writeFileSync(join(tmp, 'bad.csv'), 'id,text,audio,label\na,x,a.wav,joy\nb,y,b.wav,jyo\n');
    expect(errorOf(() => readManifest(join(tmp, 'bad.csv'), { classNames: ['joy'] })).message).toMatch(
      /bad\.csv, row 2, field 'label': unknown label 'jyo': expected one of joy/,
    );
    writeFileSync(join(tmp, 'nofield.jsonl'), '{"id":"a","text":"x","label":"joy"}\n');
    expect(errorOf(() => readManifest(join(tmp, 'nofield.jsonl'))).message).toMatch(/row 1, field 'audio': missing 'audio'/);
    expect(readManifest(join(tmp, 'nofield.jsonl'), { textOnly: true }).items[0]!.audio).toBeNull();
    writeFileSync(
      join(tmp, 'dup.jsonl'),
      '{"id":"a","text":"x","audio":"a","label":"joy"}\n{"id":"a","text":"x","audio":"a","label":"joy"}\n',
    );
    expect(errorOf(() => readManifest(join(tmp, 'dup.jsonl'))).message).toMatch(/row 2, field 'id': duplicate id 'a'/);
    writeFileSync(join(tmp, 'broken.jsonl'), '{"id":"a",\n');
    expect(errorOf(() => readManifest(join(tmp, 'broken.jsonl'))).message).toMatch(/line 1 is not a JSON object/);
  });
});

describe.runIf(existsSync(join(assets, 'emodb/wav')))('EmoDB', () => {
  it('reads 535 utterances with labels from file names and speaker-independent splits', () => {
    const ds = readEmoDB(join(assets, 'emodb'));
    expect(ds.items).toHaveLength(535);
    const byId = new Map(ds.items.map((i) => [i.id, i]));
    expect(ds.classNames[byId.get('03a01Fa')!.label]).toBe('happiness'); // F = Freude
    expect(ds.classNames[byId.get('03a01Wa')!.label]).toBe('anger'); // W = Wut
    expect(byId.get('03a01Fa')!.text).toBe('The tablecloth is lying on the fridge.');
    const speakersOf = (split: string) => new Set(ds.items.filter((i) => i.split === split).map((i) => i.speaker));
    expect([...speakersOf('dev')].sort()).toEqual(['10', '14']);
    expect([...speakersOf('test')].sort()).toEqual(['15', '16']);
    expect(speakersOf('train').size).toBe(6);
    expect(new Set(ds.items.map((i) => i.label)).size).toBe(7);
  });
});

describe.runIf(existsSync(join(assets, 'meld-text/train_sent_emo.csv')))('MELD', () => {
  it('reads the official CSVs text-only with the 7 emotions', () => {
    const src = join(tmp, 'meld-text-only');
    mkdirSync(src);
    for (const f of ['train_sent_emo.csv', 'dev_sent_emo.csv']) symlinkSync(join(assets, 'meld-text', f), join(src, f));
    const ds = readMELD(src, { textOnly: true });
    expect(ds.classNames).toEqual(MELD_CLASSES);
    expect(ds.items.filter((i) => i.split === 'train')).toHaveLength(9989);
    expect(ds.items.filter((i) => i.split === 'dev')).toHaveLength(1109);
    expect(ds.items[0]!.text).toBe("also I was the point person on my company's transition from the KL-5 to GR-6 system.");
    expect(ds.items[0]!.id).toBe('train/dia0_utt0');
    expect(errorOf(() => readMELD(src)).message).toMatch(/none of the 11098 utterances has a media file.*--text-only/);
  });
  it('finds media in the MELD.Raw folders and stops at an unknown emotion with its row', () => {
    const src = join(tmp, 'meld-media');
    mkdirSync(join(src, 'train_splits'), { recursive: true });
    const lines = readFileSync(join(assets, 'meld-text/train_sent_emo.csv'), 'utf8').split('\n');
    writeFileSync(join(src, 'train_sent_emo.csv'), lines.slice(0, 3).join('\n') + '\n');
    symlinkSync(join(assets, 'meld-audio/dia0_utt0.wav'), join(src, 'train_splits/dia0_utt0.wav'));
    const ds = readMELD(src);
    expect(ds.items.map((i) => i.audio)).toEqual([join(src, 'train_splits/dia0_utt0.wav'), null]);
    writeFileSync(
      join(src, 'train_sent_emo.csv'),
      lines[0] + '\n' + lines[1] + '\n' + lines[2]!.replace(',neutral,neutral,', ',bored,neutral,') + '\n',
    );
    expect(errorOf(() => readMELD(src)).message).toMatch(/train_sent_emo\.csv, row 3, field 'Emotion': unknown label 'bored'/);
  });
});

describe('controlled benchmark', () => {
  const items = planControlled({ size: 480, seed: 3 });
  it('balances the 4 classes and keeps speakers disjoint across splits', () => {
    for (const c of CONTROLLED_CLASSES) expect(items.filter((i) => i.label === c)).toHaveLength(120);
    const spk = (s: string) => new Set(items.filter((i) => i.split === s).map((i) => i.speaker));
    for (const [a, b] of [
      ['train', 'dev'],
      ['train', 'test'],
      ['dev', 'test'],
    ] as const) {
      expect([...spk(a)].filter((x) => spk(b).has(x))).toEqual([]);
    }
  });
  it('has no leaks: the spoken words are drawn independently of the label, the text says nothing about prosody', () => {
    // Every carrier sentence is spoken under both text cues and both prosody cues.
    const carriers = new Set(items.flatMap((i) => i.spoken.split(/(?<=\.) /)));
    for (const c of carriers) {
      const withIt = items.filter((i) => i.spoken.includes(c));
      expect(new Set(withIt.map((i) => i.valence)).size, c).toBe(2);
      expect(new Set(withIt.map((i) => i.arousal)).size, c).toBe(2);
    }
    // Spoken words never contain the written cue.
    for (const i of items) expect(i.spoken.toLowerCase()).not.toContain(i.text.toLowerCase().slice(-12));
    // The written text's distribution is the same under both prosody cues: same set of sentences per valence.
    // Reduce each text to its template (opener and filler removed): the template sets must match across arousal.
    const template = (t: string) => {
      let x = t.replace(/^(Well|You know|So|Listen), /, '');
      for (const th of CONTROLLED_VOCAB.things) x = x.replace(new RegExp(th, 'i'), '{x}');
      return x[0]!.toUpperCase() + x.slice(1);
    };
    const templatesBy = (valence: string, arousal: string) =>
      [...new Set(items.filter((i) => i.valence === valence && i.arousal === arousal).map((i) => template(i.text)))].sort();
    expect(templatesBy('positive', 'calm')).toEqual([...CONTROLLED_VOCAB.positive].map((t) => t.replace('{X}', '{x}')).sort());
    expect(templatesBy('positive', 'aroused')).toEqual(templatesBy('positive', 'calm'));
    expect(templatesBy('negative', 'aroused')).toEqual(templatesBy('negative', 'calm'));
    // Spoken length does not depend on the text cue (mean characters within 15%).
    const meanLen = (v: string) => {
      const xs = items.filter((i) => i.valence === v).map((i) => i.spoken.length);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    expect(Math.abs(meanLen('positive') / meanLen('negative') - 1)).toBeLessThan(0.15);
    // Prosody ranges of the two arousal levels do not overlap.
    const calm = items.filter((i) => i.arousal === 'calm');
    const aroused = items.filter((i) => i.arousal === 'aroused');
    expect(Math.max(...calm.map((i) => i.pitch))).toBeLessThan(Math.min(...aroused.map((i) => i.pitch)));
  });
  it.runIf(hasEspeak())('synthesises wavs with espeak-ng and a manifest that opens as a dataset', async () => {
    const out = join(tmp, 'controlled');
    const r = await generateControlled(out, { size: 8, seed: 5 });
    const ds = openDataset('controlled', out);
    expect(ds.classNames).toEqual(CONTROLLED_CLASSES);
    expect(ds.items).toHaveLength(8);
    const clip = loadAudio(ds.items[0]!.audio!);
    expect(clip.length).toBeGreaterThan(16_000);
    expect(r.items[0]!.text).toBe(ds.items[0]!.text);
  });
});
