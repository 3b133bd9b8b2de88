// Label maps (packages/model/src/datasets/label-map.ts): the built-in meld7 over every corpus's labels, overrides,
// JSON and CSV files with their errors, and applyLabelMap on a feature set: relabelled and dropped utterances, the
// batches it serves, the per-label counts, and the report applied again from its JSON (as eval would from a checkpoint).
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { memoryFeatureSplit, type FeatureSet, type UtteranceFeatures } from '../../packages/model/src/features.ts';
import {
  applyLabelMap,
  CREMAD_CLASSES,
  DatasetError,
  EMODB_CLASSES,
  formatLabelMapReport,
  LABEL_MAP_CHOICES,
  LABEL_MAPS,
  labelMapFromJSON,
  labelMapIndices,
  mapLabels,
  MELD_CLASSES,
  openDataset,
  parseLabelMap,
  RAVDESS_CLASSES,
  resolveLabel,
  sameLabelMap,
} from '../../packages/model/src/datasets/index.ts';
import { DataError } from '../../packages/model/src/errors.ts';
import { extractFeatures, openFeatureCache } from '../../packages/model/src/cache/index.ts';
import { createAudioEncoder, createTextEncoder } from '../../packages/model/src/encoders/index.ts';
import wavefilePkg from 'wavefile';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-label-map-'));

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof DatasetError || err instanceof DataError) return err;
    throw err;
  }
  throw new Error('expected a DatasetError or DataError');
}
const mapped = (classes: readonly string[], spec = 'meld7') => {
  const m = parseLabelMap(spec);
  return Object.fromEntries(classes.map((c) => [c, resolveLabel(c, m)]));
};

describe('meld7', () => {
  it("maps every corpus's labels onto MELD's 7 emotions, in MELD's order", () => {
    const m = parseLabelMap('meld7');
    expect(m.classes).toEqual([...MELD_CLASSES]);
    expect(labelMapIndices(MELD_CLASSES, m)).toEqual(Int32Array.from([0, 1, 2, 3, 4, 5, 6])); // a MELD cache is unchanged
    expect(mapped(RAVDESS_CLASSES)).toEqual({
      neutral: 'neutral',
      calm: 'neutral',
      happy: 'joy',
      sad: 'sadness',
      angry: 'anger',
      fearful: 'fear',
      disgust: 'disgust',
      surprised: 'surprise',
    });
    expect(mapped(EMODB_CLASSES)).toEqual({
      neutral: 'neutral',
      happiness: 'joy',
      boredom: null,
      anger: 'anger',
      sadness: 'sadness',
      disgust: 'disgust',
      fear: 'fear',
    });
    expect(mapped(CREMAD_CLASSES)).toEqual({
      anger: 'anger',
      disgust: 'disgust',
      fear: 'fear',
      happy: 'joy',
      neutral: 'neutral',
      sad: 'sadness',
    });
    // each corpus table lists exactly that corpus's labels
    const corpora = LABEL_MAPS.meld7!.corpora;
    expect(Object.keys(corpora.ravdess!).sort()).toEqual([...RAVDESS_CLASSES].sort());
    expect(Object.keys(corpora.emodb!).sort()).toEqual([...EMODB_CLASSES].sort());
    expect(Object.keys(corpora['crema-d']!).sort()).toEqual([...CREMAD_CLASSES].sort());
    expect(Object.keys(corpora.meld!).sort()).toEqual([...MELD_CLASSES].sort());
    expect(LABEL_MAP_CHOICES.meld7).toEqual({ calm: ['neutral', null], boredom: ['neutral', null] });
  });

  it('takes overrides for the open choices, and refuses a class it does not have', () => {
    expect(mapped(['calm', 'boredom', 'happy'], 'meld7:calm=drop,boredom=neutral')).toEqual({
      calm: null,
      boredom: 'neutral',
      happy: 'joy',
    });
    expect(mapped(['calm', 'boredom'], 'meld7:calm=, Boredom = Neutral')).toEqual({ calm: null, boredom: 'neutral' });
    expect(parseLabelMap('meld7:calm=drop').name).toBe('meld7:calm=drop');
    expect(errorOf(() => parseLabelMap('meld7:calm=bored')).message).toMatch(
      /override 'calm=bored': 'bored' is not one of meld7's classes \(neutral, joy, .*\); use calm=drop/,
    );
    expect(errorOf(() => parseLabelMap('meld7:calm')).message).toMatch(/override 'calm' is not label=class \(or label=drop\)/);
    expect(errorOf(() => parseLabelMap('meld8')).message).toMatch(
      /^meld8: no such file, and not a built-in label map \(built-in: meld7; or a JSON file/,
    );
    expect(errorOf(() => parseLabelMap(tmp)).message).toMatch(/: a folder, not a label map file \(built-in: meld7/);
  });

  it('stops at a label it cannot place, naming the fix', () => {
    expect(errorOf(() => labelMapIndices(['content', 'neutral'], parseLabelMap('meld7'))).message).toMatch(
      new RegExp(
        String.raw`^meld7: label 'content' \(of the classes content, neutral\) is not in this label map, nor one of its classes ` +
          String.raw`\(neutral, joy, surprise, anger, sadness, disgust, fear\): ` +
          String.raw`add ':content=<class>' \(or 'content=drop'\) to --label-map meld7$`,
      ),
    );
  });
});

describe('label map files', () => {
  it('reads JSON, flat or with its classes in order, and CSV with a header, comments and empty targets', () => {
    writeFileSync(
      join(tmp, 'flat.json'),
      JSON.stringify({ Calm: 'neutral', happy: 'positive', sad: 'negative', boredom: null, angry: '' }),
    );
    const flat = parseLabelMap(join(tmp, 'flat.json'));
    expect(flat).toEqual({
      name: join(tmp, 'flat.json'),
      classes: ['neutral', 'positive', 'negative'],
      map: { calm: 'neutral', happy: 'positive', sad: 'negative', boredom: null, angry: null },
    });
    writeFileSync(
      join(tmp, 'nested.json'),
      JSON.stringify({ classes: ['negative', 'neutral', 'positive'], map: { sad: 'negative', happy: 'positive' } }),
    );
    const nested = parseLabelMap(join(tmp, 'nested.json'));
    expect(nested.classes).toEqual(['negative', 'neutral', 'positive']);
    expect(resolveLabel('Neutral', nested)).toBe('neutral'); // a class of the map keeps its name
    writeFileSync(join(tmp, 'm.csv'), 'from,to\n# RAVDESS\nhappy,joy\n\ncalm,\n"sad",sadness\nneutral,neutral\n');
    expect(parseLabelMap(join(tmp, 'm.csv'))).toEqual({
      name: join(tmp, 'm.csv'),
      classes: ['joy', 'sadness', 'neutral'],
      map: { happy: 'joy', calm: null, sad: 'sadness', neutral: 'neutral' },
    });
    writeFileSync(join(tmp, 'noext'), 'a,x\nb,y\n');
    expect(parseLabelMap(join(tmp, 'noext')).classes).toEqual(['x', 'y']);
    // a built-in's name wins over a file of that name in the working folder; ./meld7 is the file
    writeFileSync(join(tmp, 'meld7'), 'a,x\nb,y\n');
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      expect(parseLabelMap('meld7').classes).toEqual([...MELD_CLASSES]);
      expect(parseLabelMap('./meld7').classes).toEqual(['x', 'y']);
    } finally {
      process.chdir(cwd);
    }
  });

  it('stops with the file, the row and the field on a bad map', () => {
    const bad = (name: string, text: string) => {
      writeFileSync(join(tmp, name), text);
      return errorOf(() => parseLabelMap(join(tmp, name))).message;
    };
    expect(bad('dup.csv', 'happy,joy\nsad,sadness\nHappy,anger\n')).toMatch(/dup\.csv, row 3, field 'from': 'happy' is listed twice/);
    expect(bad('one.csv', 'happy,joy\ncalm\n')).toMatch(
      /one\.csv, row 2: 1 fields: a row is 'from,to' \(an empty 'to' drops the label: 'calm,'\)/,
    );
    expect(bad('three.csv', 'happy,joy,x\n')).toMatch(/row 1: 3 fields/);
    expect(bad('single.csv', 'happy,joy\nglad,joy\n')).toMatch(/maps onto 1 class \('joy'\): a classifier needs at least 2/);
    expect(bad('broken.json', '{"happy": "joy",')).toMatch(/broken\.json: not valid JSON .*a label map is \{ "from": "to"/);
    expect(bad('array.json', '["joy"]')).toMatch(/a label map is a JSON object/);
    expect(bad('num.json', '{"happy": 3, "sad": "sadness"}')).toMatch(
      /num\.json, field 'happy': 'happy' maps to 3: give a class name, or null/,
    );
    expect(bad('outside.json', '{"classes": ["joy", "sadness"], "map": {"happy": "joy", "angry": "anger"}}')).toMatch(
      /field 'to': 'angry' maps to 'anger', which is not one of "classes" \(joy, sadness\)/,
    );
    writeFileSync(join(tmp, 'partial.csv'), 'happy,joy\nsad,sadness\n');
    expect(errorOf(() => labelMapIndices(['happy', 'sad', 'calm'], parseLabelMap(join(tmp, 'partial.csv')))).message).toMatch(
      /partial\.csv: label 'calm' .* add a row 'calm,<class>' to .*partial\.csv \(or 'calm,' to drop it\)/,
    );
  });
});

describe('applyLabelMap', () => {
  // RAVDESS-like features: utterance k has label labels[k], 1 text token [k] and 2 audio tokens [k, -k].
  function features(split: Record<string, number[]>): FeatureSet & { index: string } {
    const utt = (name: string, y: number, k: number): UtteranceFeatures => ({
      id: `${name}-${k}`,
      label: y,
      text: Float32Array.from([k]),
      textLen: 1,
      audio: Float32Array.from([k, -k]),
      audioLen: 2,
    });
    return {
      index: 'kept', // what a FeatureCache adds (its index.json) survives the map
      classNames: RAVDESS_CLASSES,
      textDim: 1,
      audioDim: 1,
      textEncoder: 'hash',
      audioEncoder: 'logmel',
      splits: Object.fromEntries(
        Object.entries(split).map(([name, ys]) => [
          name,
          memoryFeatureSplit(
            ys.map((y, k) => utt(name, y, k)),
            1,
            1,
          ),
        ]),
      ),
    };
  }
  const [NEUTRAL, CALM, HAPPY, SAD] = [0, 1, 2, 3];

  it('relabels onto the map, drops what maps to nothing, serves the right batches and counts each label', () => {
    const fs = features({ train: [HAPPY, CALM, SAD, NEUTRAL, CALM, HAPPY], dev: [CALM, SAD] });
    const { featureSet, report } = applyLabelMap(fs, parseLabelMap('meld7:calm=drop'));
    const [neutral, joy, sadness] = ['neutral', 'joy', 'sadness'].map((c) => MELD_CLASSES.indexOf(c as never));
    expect(featureSet.classNames).toEqual([...MELD_CLASSES]);
    expect(featureSet.index).toBe('kept');
    const train = featureSet.splits.train!;
    expect(train.size).toBe(4);
    expect(train.ids).toEqual(['train-0', 'train-2', 'train-3', 'train-5']);
    expect([...train.labels]).toEqual([joy, sadness, neutral, joy]);
    expect([...train.textLens]).toEqual([1, 1, 1, 1]);
    // a batch padded to 3 rows: the chosen utterances' own tokens, their mapped labels, -1 for the padding row
    const b = train.batch([3, 1], { rows: 3, Tt: 2, Ta: 2 });
    expect(b.ids).toEqual(['train-5', 'train-2']);
    expect([...b.labels]).toEqual([joy, sadness, -1]);
    expect([...b.text]).toEqual([5, 0, 2, 0, 0, 0]);
    expect([...b.audio]).toEqual([5, -5, 2, -2, 0, 0]);
    expect([...b.textMask]).toEqual([1, 0, 1, 0, 0, 0]);
    expect([...featureSet.splits.dev!.labels]).toEqual([sadness]);
    expect(report.labels.filter((l) => l.counts.train || l.counts.dev)).toEqual([
      { from: 'neutral', to: 'neutral', counts: { train: 1, dev: 0 } },
      { from: 'calm', to: null, counts: { train: 2, dev: 1 } },
      { from: 'happy', to: 'joy', counts: { train: 2, dev: 0 } },
      { from: 'sad', to: 'sadness', counts: { train: 1, dev: 1 } },
    ]);
    expect(report.labels).toHaveLength(8);
    expect(report.kept).toEqual({ train: 4, dev: 1 });
    expect(report.dropped).toEqual({ train: 2, dev: 1 });
    expect(report.empty.train).toEqual(['surprise', 'anger', 'disgust', 'fear']);
    const lines = formatLabelMapReport(report);
    expect(lines[0]).toBe('label map meld7:calm=drop: 8 labels onto 7 classes (neutral, joy, surprise, anger, sadness, disgust, fear)');
    expect(lines).toContain('  calm      -> dropped   train 2  dev 1');
    expect(lines).toContain('  happy     -> joy       train 2  dev 0');
    expect(lines).toContain('  kept train 4 of 6, dev 1 of 2');
    expect(lines.at(-1)).toMatch(
      /classes with no utterances \(the model still has their outputs\): train: surprise, anger, disgust, fear; dev: neutral, joy/,
    );
  });

  it('keeps a split whole when nothing is dropped (calm -> neutral by default), and applies again from its saved report', () => {
    const fs = features({ train: [CALM, NEUTRAL, HAPPY] });
    const { featureSet, report } = applyLabelMap(fs, parseLabelMap('meld7'));
    expect([...featureSet.splits.train!.labels]).toEqual([0, 0, 1]);
    expect([...featureSet.splits.train!.batch([0, 2]).labels]).toEqual([0, 1]);
    // a checkpoint keeps the report as JSON; eval rebuilds the map from it and gets the same features
    const saved = JSON.parse(JSON.stringify(report));
    const again = applyLabelMap(fs, labelMapFromJSON(saved.labelMap, 'checkpoint'));
    expect(again.report).toEqual(report);
    expect(again.featureSet.classNames).toEqual(featureSet.classNames);
    // what a resumed run checks: the same placement, whatever the spelling
    expect(sameLabelMap(labelMapFromJSON(saved.labelMap, 'checkpoint'), parseLabelMap('meld7:calm=neutral'))).toBe(true);
    expect(sameLabelMap(labelMapFromJSON(saved.labelMap, 'checkpoint'), parseLabelMap('meld7:calm=drop'))).toBe(false);
  });

  it('maps a list of labels, and stops at a label outside the classes', () => {
    const m = parseLabelMap('meld7');
    expect([...mapLabels([CALM, HAPPY, 4], RAVDESS_CLASSES, m)]).toEqual([0, 1, 3]);
    expect([...mapLabels([2, 0], EMODB_CLASSES, m)]).toEqual([-1, 0]); // boredom dropped
    expect(errorOf(() => mapLabels([9], RAVDESS_CLASSES, m)).message).toMatch(/label 9 \(position 0\) is not a class index in \[0, 8\)/);
    expect(errorOf(() => applyLabelMap(features({ train: [HAPPY, 12] }), m)).message).toMatch(
      /split 'train', utterance 'train-1': label 12 is not a class index in \[0, 8\)/,
    );
  });
});

describe('a RAVDESS feature cache read for training under meld7', () => {
  it('extracts with the corpus labels, then maps them when the cache is read', async () => {
    // 0.4 s tones in the release layout: actor 01 (train) and 17 (dev); emotions 01 neutral, 02 calm, 03 happy, 08 surprised
    const root = join(tmp, 'ravdess');
    const names = ['03-01-01-01-01-01-01', '03-01-02-01-01-01-01', '03-01-03-02-02-01-01', '03-01-02-02-01-02-17', '03-01-08-01-02-01-17'];
    for (const [k, n] of names.entries()) {
      mkdirSync(join(root, `Actor_${n.slice(-2)}`), { recursive: true });
      const wav = new WaveFile();
      wav.fromScratch(
        1,
        16000,
        '16',
        Array.from({ length: 6400 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * (200 + 40 * k) * i) / 16000))),
      );
      writeFileSync(join(root, `Actor_${n.slice(-2)}`, `${n}.wav`), wav.toBuffer());
    }
    const out = join(tmp, 'ravdess-cache');
    await extractFeatures({
      dataset: openDataset('ravdess', root),
      textEncoder: await createTextEncoder('hash'),
      audioEncoder: await createAudioEncoder('logmel'),
      out,
    });
    const cache = openFeatureCache(out);
    expect(cache.classNames).toEqual([...RAVDESS_CLASSES]); // the cache keeps the corpus's own labels
    const { featureSet, report } = applyLabelMap(cache, parseLabelMap('meld7:calm=drop'));
    expect(featureSet.index.dataset.name).toBe('ravdess');
    expect(featureSet.splits.train!.ids).toEqual(['03-01-01-01-01-01-01', '03-01-03-02-02-01-01']);
    expect(featureSet.splits.dev!.ids).toEqual(['03-01-08-01-02-01-17']);
    const b = featureSet.splits.train!.batch([0, 1]);
    expect([...b.labels].map((y) => featureSet.classNames[y])).toEqual(['neutral', 'joy']);
    expect(b.audioMask.some((m) => m > 0) && b.textMask.some((m) => m > 0)).toBe(true);
    expect([...featureSet.splits.dev!.batch([0]).labels].map((y) => featureSet.classNames[y])).toEqual(['surprise']);
    expect(report.labels.find((l) => l.from === 'calm')).toEqual({ from: 'calm', to: null, counts: { train: 1, dev: 1 } });
    expect(report.kept).toEqual({ train: 2, dev: 1 });
  });
});
