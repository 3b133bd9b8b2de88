#!/usr/bin/env node
// Tunes the VAD + segmenter settings of `emofuse analyze` (packages/model/src/analyze/vad.ts) on assembled
// recordings with a known answer, and reports them on a held-out set. No ASR, no model: Silero's probabilities are
// computed once per recording (cached in --cache) and every setting replays the Segmenter over them.
//
//   tune set:  RAVDESS actors 01-16 + EmoDB train speakers (not 10, 14, 15, 16) + the 4 MELD clips
//   held out:  RAVDESS actors 17-18 + EmoDB dev speakers (10, 14); never actors 19-24
//   each: seeds x {clean, 20 dB, 10 dB} white noise, pauses 0.8-2.0 s (odd seeds) or 0.5-1.5 s (even seeds)
//
// Score: share of clip boundaries (each clip's speech start and end as Silero hears the clip alone) within 0.3 s of
// a segment boundary, per condition and overall (the test's boundariesFound); and precision: the share of our
// boundaries within 0.3 s of a clip's, so that splitting sentences at word gaps does not win. Settings are ranked by
// boundaries found among those with precision >= --min-precision (0.9: the defaults before were at 90.5%). Build first.
//
//   nice -n 10 node scripts/tune-vad.mjs                  # 560 settings on the tune set, the best on held-out (~3 min)
//   nice -n 10 node scripts/tune-vad.mjs --only 0.5,0.25,0.5,0.1   # one setting: threshold,minSpeech,minSilence,pad

import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: a } = parseArgs({
  options: {
    assets: { type: 'string', default: process.env.EMOFUSE_ASSETS ?? join(root, '..', 'shared', 'assets') },
    cache: { type: 'string', default: '/tmp/emofuse-tune-vad' },
    seeds: { type: 'string', default: '1,2,3,4' },
    'held-seeds': { type: 'string', default: '11,12' },
    count: { type: 'string', default: '24' },
    only: { type: 'string' },
    top: { type: 'string', default: '10' },
    'min-precision': { type: 'string', default: '0.9' },
  },
});
const fail = (msg) => {
  console.error(`tune-vad: ${msg}`);
  process.exit(2);
};
if (!existsSync(a.assets)) fail(`assets folder ${a.assets} not found: pass --assets or set EMOFUSE_ASSETS`);
const m = await import('@emofuse/model').catch((err) => fail(`cannot load @emofuse/model (${err.message}): run 'npm run build' first`));
mkdirSync(a.cache, { recursive: true });

const TOL = 0.3;
const SNRS = [null, 20, 10];
const actor = (src) => Number(src.split('-').at(-1));
const emodbSpeaker = (src) => src.slice('emodb:'.length, 'emodb:'.length + 2);
const SETS = {
  tune: (src) =>
    src.startsWith('meld:') ||
    (src.startsWith('ravdess:') && actor(src) <= 16) ||
    (src.startsWith('emodb:') && !['10', '14', '15', '16'].includes(emodbSpeaker(src))),
  held: (src) =>
    (src.startsWith('ravdess:') && actor(src) >= 17 && actor(src) <= 18) ||
    (src.startsWith('emodb:') && ['10', '14'].includes(emodbSpeaker(src))),
};

/** One recording's truth and Silero probabilities, from the cache or computed. */
async function recording(set, seed, snr) {
  const name = `${set}-s${seed}-${snr === null ? 'clean' : `${snr}dB`}`;
  const file = join(a.cache, `${name}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const clips = m
    .pickClips(a.assets, { count: 100_000, seed })
    .filter((c) => SETS[set](c.source))
    .slice(0, Number(a.count));
  const pauses = seed % 2 ? { pauseMin: 0.8, pauseMax: 2.0 } : { pauseMin: 0.5, pauseMax: 1.5 };
  const parts = [];
  const truth = await m.assembleRecording({ clips, seed, ...pauses, ...(snr === null ? {} : { snrDb: snr }) }, (x) => parts.push(x));
  const pcm = new Float32Array(parts.reduce((n, x) => n + x.length, 0));
  parts.reduce((at, x) => (pcm.set(x, at), at + x.length), 0);
  const vad = await m.SileroVad.open();
  vad.reset();
  const probs = [];
  for (let i = 0; i + m.VAD_FRAME <= pcm.length; i += m.VAD_FRAME)
    probs.push(Math.round(1e4 * (await vad.next(pcm.subarray(i, i + m.VAD_FRAME)))) / 1e4);
  await vad.dispose();
  const rec = { name, set, seed, snr, pauses, samples: pcm.length, truth, probs };
  writeFileSync(file, JSON.stringify(rec));
  console.error(`  ${name}: ${(pcm.length / 16000).toFixed(0)} s, ${truth.clips.length} clips`);
  return rec;
}

/** Boundaries found within TOL s for one setting on one recording. */
function score(rec, settings) {
  const seg = new m.Segmenter(settings, rec.samples);
  const spans = [];
  for (const p of rec.probs) spans.push(...seg.push(p));
  spans.push(...seg.finish());
  const ours = spans.flatMap((s) => [s.start / 16000, s.end / 16000]).sort((x, y) => x - y);
  const near = (t) => {
    let lo = 0;
    let hi = ours.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ours[mid] < t - TOL) lo = mid + 1;
      else hi = mid;
    }
    return lo < ours.length && ours[lo] <= t + TOL;
  };
  let found = 0;
  let total = 0;
  const missed = [];
  for (const c of rec.truth.clips) {
    if (c.speechStart === null || c.speechEnd === null) continue;
    for (const [what, t] of [
      ['start', c.speechStart],
      ['end', c.speechEnd],
    ]) {
      total++;
      if (near(t)) found++;
      else missed.push(`${rec.name} ${c.source} (${c.label}) ${what} ${t.toFixed(2)} s`);
    }
  }
  // precision: our boundaries within TOL s of a clip's speech start or end (a sentence split at a word gap is not)
  const truthB = rec.truth.clips.flatMap((c) => (c.speechStart === null ? [] : [c.speechStart, c.speechEnd]));
  const extra = ours.filter((x) => !truthB.some((t) => Math.abs(t - x) <= TOL)).length;
  return { found, total, missed, ours: ours.length, extra };
}

const cond = (r) => (r.snr === null ? 'clean' : `${r.snr} dB`);
function table(recs, settings) {
  const by = new Map();
  let found = 0;
  let total = 0;
  let ours = 0;
  let extra = 0;
  const missed = [];
  for (const r of recs) {
    const s = score(r, settings);
    ours += s.ours;
    extra += s.extra;
    const k = cond(r);
    const b = by.get(k) ?? { found: 0, total: 0 };
    by.set(k, { found: b.found + s.found, total: b.total + s.total });
    found += s.found;
    total += s.total;
    missed.push(...s.missed);
  }
  return { share: found / total, found, total, by, missed, precision: 1 - extra / ours, extra };
}
const pct = (f, t) => `${((100 * f) / t).toFixed(1)}% (${f}/${t})`;
const fmt = (s) => `threshold ${s.threshold} minSpeech ${s.minSpeech} minSilence ${s.minSilence} pad ${s.pad}`;
const row = (s, t) =>
  `| ${s.threshold} | ${s.minSpeech} | ${s.minSilence} | ${s.pad} | ${[...t.by.values()].map((b) => pct(b.found, b.total)).join(' | ')} ` +
  `| ${pct(t.found, t.total)} | ${(100 * t.precision).toFixed(1)}% (${t.extra} extra) |`;

console.error('recordings (Silero once each, cached in ' + a.cache + '):');
const tune = [];
for (const seed of a.seeds.split(',').map(Number)) for (const snr of SNRS) tune.push(await recording('tune', seed, snr));
const held = [];
for (const seed of a['held-seeds'].split(',').map(Number)) for (const snr of SNRS) held.push(await recording('held', seed, snr));

const base = { ...m.VAD_DEFAULTS };
let grid;
if (a.only) {
  const [threshold, minSpeech, minSilence, pad] = a.only.split(',').map(Number);
  grid = [{ ...base, threshold, minSpeech, minSilence, pad }];
} else {
  grid = [];
  for (const threshold of [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65])
    for (const minSpeech of [0.1, 0.25])
      for (const minSilence of [0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6])
        for (const pad of [0, 0.03, 0.05, 0.1, 0.15]) grid.push({ ...base, threshold, minSpeech, minSilence, pad });
}
const head =
  `| threshold | minSpeech | minSilence | pad | ${SNRS.map((s) => (s === null ? 'clean' : `${s} dB`)).join(' | ')} | all | precision |\n` +
  `|---:|---:|---:|---:|${SNRS.map(() => '---:|').join('')}---:|---:|`;
// ranked by boundaries found among settings whose boundaries are >= MIN_PRECISION clip boundaries (else splitting
// every sentence at its word gaps would "find" more)
const MIN_PRECISION = Number(a['min-precision']);
const results = grid
  .map((s) => ({ s, t: table(tune, s) }))
  .sort((x, y) => Number(y.t.precision >= MIN_PRECISION) - Number(x.t.precision >= MIN_PRECISION) || y.t.share - x.t.share);
console.log(`tune set: ${tune.length} recordings, boundaries within ${TOL} s\n${head}`);
const defaults = results.find((r) => fmt(r.s) === fmt(base)) ?? { s: base, t: table(tune, base) };
for (const r of results.slice(0, Number(a.top))) console.log(row(r.s, r.t));
console.log(`${row(defaults.s, defaults.t)} (current defaults)`);
const best = results[0];
console.log(`\nheld-out set: ${held.length} recordings\n${head}`);
const hb = table(held, best.s);
const hd = table(held, base);
console.log(`${row(best.s, hb)} (best on tune)\n${row(base, hd)} (current defaults)`);
console.log(`\nmissed on held-out at the best (${fmt(best.s)}):\n  ${hb.missed.join('\n  ')}`);
console.log(`\nmissed on tune at the best:\n  ${best.t.missed.join('\n  ')}`);
