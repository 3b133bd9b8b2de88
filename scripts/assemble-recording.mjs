#!/usr/bin/env node
// A recording with a known answer, for trying and testing `emofuse analyze`: real clips (RAVDESS actors 01-18,
// EmoDB, the 4 MELD utterances, from ../shared/assets or EMOFUSE_ASSETS) end to end with pauses of known length,
// optionally under white noise at a stated SNR and repeated to a target length. Writes <name>.wav (+ .mp3/.m4a
// through ffmpeg), <name>.truth.json (each clip's span, label, source id, words) and <name>.srt (for --text-from).
// The work is assembleRecording / writeAssembled in @emofuse/model (packages/model/src/analyze/assemble.ts), which
// the tests call directly; build first (npm run build). Never commit the audio.
//
//   node scripts/assemble-recording.mjs --out /tmp/rec --name mix --count 24 --formats wav,mp3
//   node scripts/assemble-recording.mjs --out /tmp/rec --name noisy --count 24 --snr 10
//   node scripts/assemble-recording.mjs --out /tmp/rec --name hour --count 60 --minutes 60 --formats mp3

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: a } = parseArgs({
  options: {
    out: { type: 'string' },
    name: { type: 'string', default: 'recording' },
    count: { type: 'string', default: '24' },
    corpora: { type: 'string', default: 'ravdess,emodb,meld' },
    seed: { type: 'string', default: '1' },
    pause: { type: 'string', default: '0.8-2.0' },
    snr: { type: 'string' },
    minutes: { type: 'string' },
    formats: { type: 'string', default: 'wav' },
    assets: { type: 'string', default: process.env.EMOFUSE_ASSETS ?? join(root, '..', 'shared', 'assets') },
    help: { type: 'boolean', short: 'h' },
  },
});
const usage = `usage: node scripts/assemble-recording.mjs --out DIR [--name recording] [--count 24] [--corpora ravdess,emodb,meld]
  [--seed 1] [--pause 0.8-2.0] [--snr DB] [--minutes M] [--formats wav,mp3,m4a] [--assets ../shared/assets]`;
const fail = (msg) => {
  console.error(`assemble-recording: ${msg}\n${usage}`);
  process.exit(2);
};
if (a.help) {
  console.log(usage);
  process.exit(0);
}
if (!a.out) fail('--out DIR is required');
if (!existsSync(a.assets)) fail(`assets folder ${a.assets} not found: pass --assets or set EMOFUSE_ASSETS`);
const num = (flag, v) => {
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`--${flag} must be a number, got '${v}'`);
  return n;
};
const [pauseMin, pauseMax] = a.pause.split('-').map((v) => num('pause', v));
const corpora = a.corpora.split(',').map((c) => c.trim());
for (const c of corpora) if (!['ravdess', 'emodb', 'meld'].includes(c)) fail(`--corpora: unknown corpus '${c}' (ravdess, emodb, meld)`);

let model;
try {
  model = await import('@emofuse/model');
} catch (err) {
  fail(`cannot load @emofuse/model (${err.message}): run 'npm run build' first`);
}
if (!model.writeAssembled) fail("@emofuse/model has no writeAssembled: its dist/ is older than the sources; run 'npm run build'");
const clips = model.pickClips(a.assets, { count: num('count', a.count), corpora, seed: num('seed', a.seed) });
const files = await model.writeAssembled(
  a.out,
  a.name,
  {
    clips,
    pauseMin,
    pauseMax,
    seed: num('seed', a.seed),
    ...(a.snr !== undefined ? { snrDb: num('snr', a.snr) } : {}),
    ...(a.minutes !== undefined ? { targetSeconds: 60 * num('minutes', a.minutes) } : {}),
  },
  a.formats.split(',').map((f) => f.trim()),
);
const t = files.truth;
console.log(
  `${Object.values(files.audio).join(', ')}: ${(t.seconds / 60).toFixed(1)} min, ${t.clips.length} clips (${clips.length} distinct)` +
    `${t.snrDb !== null ? `, white noise at ${t.snrDb} dB SNR` : ''}\ntruth ${files.truthFile}, words ${files.srt}`,
);
