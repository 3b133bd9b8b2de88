// What `analyze` writes beside segments.jsonl: segments.csv, the timeline (SVG, and PNG through @resvg/resvg-js as
// the confusion plot does), summary.md, and for a folder an index. Pure functions of the segments.

import type { AnalyzedSegment } from './types.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** One colour per emotion, by name (the datasets spell them differently), else from a fallback palette by index. */
const NAMED_COLOURS: [RegExp, string][] = [
  [/^neutral/, '#9e9e9e'],
  [/^calm/, '#80cbc4'],
  [/^(happ|joy)/, '#fbc02d'],
  [/^sad/, '#1e88e5'],
  [/^ang/, '#e53935'],
  [/^fear/, '#8e24aa'],
  [/^disgust/, '#43a047'],
  [/^surpris/, '#fb8c00'],
  [/^bored/, '#8d6e63'],
];
const FALLBACK = ['#00acc1', '#d81b60', '#7cb342', '#5e35b1', '#f4511e', '#3949ab', '#c0ca33', '#6d4c41'];

export function emotionColours(classNames: readonly string[]): Record<string, string> {
  let f = 0;
  return Object.fromEntries(
    classNames.map((c) => [c, NAMED_COLOURS.find(([re]) => re.test(c.toLowerCase()))?.[1] ?? FALLBACK[f++ % FALLBACK.length]!]),
  );
}

export const fmtTime = (t: number) => {
  const s = Math.max(0, t);
  const h = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  const sec = (s % 60).toFixed(1).padStart(4, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
};

const csvField = (v: string | number) => {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** start, end, status, text, emotion, then one column per class probability (empty for a segment not judged). */
export function segmentsCsv(segments: readonly AnalyzedSegment[], classNames: readonly string[]): string {
  const head = ['start', 'end', 'status', 'text', 'emotion', ...classNames.map((c) => `p_${c}`)];
  const rows = segments.map((s) => [
    s.start.toFixed(3),
    s.end.toFixed(3),
    s.status,
    s.text,
    s.emotion ?? '',
    ...classNames.map((c) => (s.probabilities ? s.probabilities[c]!.toFixed(6) : '')),
  ]);
  return [head, ...rows].map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

/**
 * Emotion over time: one row per stretch of the recording (the whole of it when short, else minutes per row so at
 * most 12 rows); in each row a coloured strip (a segment's colour is its emotion, its opacity the probability; grey
 * hatching: too short to judge), under it the class probabilities as stacked bands, under that the words where they fit.
 */
export function timelineSvg(segments: readonly AnalyzedSegment[], classNames: readonly string[], seconds: number, title: string): string {
  const colours = emotionColours(classNames);
  const W = 1200;
  const left = 60;
  const plotW = W - left - 20;
  const total = Math.max(seconds, 1);
  const rowSeconds = total <= 150 ? total : Math.ceil(total / 12 / 60) * 60;
  const rows = Math.ceil(total / rowSeconds);
  const STRIP = 22;
  const BANDS = 56;
  const WORDS = 30;
  const ROW = STRIP + BANDS + WORDS + 26;
  const top = 78;
  const H = top + rows * ROW + 10;
  const x = (t: number) => left + (t / rowSeconds) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, ` +
      `Helvetica, sans-serif">`,
  );
  out.push(
    '<defs><pattern id="short" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" ' +
      'height="6" fill="#cfcfcf"/></pattern></defs>',
  );
  out.push('<rect width="100%" height="100%" fill="white"/>');
  out.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`);
  let lx = left;
  for (const c of classNames) {
    out.push(
      `<rect x="${lx}" y="38" width="14" height="14" fill="${colours[c]}"/><text x="${lx + 19}" y="50" font-size="12">${esc(c)}</text>`,
    );
    lx += 30 + c.length * 7.5;
  }
  out.push(
    `<rect x="${lx}" y="38" width="14" height="14" fill="url(#short)" stroke="#999" stroke-width="0.5"/><text x="${lx + 19}" ` +
      `y="50" font-size="12">too short to judge</text>`,
  );
  for (let r = 0; r < rows; r++) {
    const t0 = r * rowSeconds;
    const t1 = Math.min(total, t0 + rowSeconds);
    const y = top + r * ROW;
    out.push(`<g transform="translate(0 ${y})">`);
    out.push(`<rect x="${left}" y="0" width="${x(t1 - t0) - left}" height="${STRIP + BANDS}" fill="#f6f6f6"/>`);
    out.push(`<text x="${left - 6}" y="${STRIP - 6}" font-size="11" text-anchor="end">${fmtTime(t0)}</text>`);
    const tick = rowSeconds <= 20 ? 2 : rowSeconds <= 60 ? 5 : rowSeconds <= 150 ? 10 : 60;
    for (let t = Math.ceil(t0 / tick) * tick; t <= t1 + 1e-9; t += tick) {
      const tx = x(t - t0);
      out.push(
        `<line x1="${tx}" x2="${tx}" y1="${STRIP + BANDS}" y2="${STRIP + BANDS + 4}" stroke="#666"/><text x="${tx}" ` +
          `y="${STRIP + BANDS + 14}" font-size="9" text-anchor="middle" fill="#555">${fmtTime(t)}</text>`,
      );
    }
    let wordsEnd = -Infinity;
    for (const s of segments) {
      if (s.end <= t0 || s.start >= t1) continue;
      const a = x(Math.max(s.start, t0) - t0);
      const b = x(Math.min(s.end, t1) - t0);
      const w = Math.max(b - a, 0.8);
      if (s.status !== 'ok' || !s.probabilities) {
        out.push(`<rect x="${a}" y="0" width="${w}" height="${STRIP}" fill="url(#short)"/>`);
      } else {
        const p = s.probabilities[s.emotion!]!;
        out.push(
          `<rect x="${a}" y="0" width="${w}" height="${STRIP}" fill="${colours[s.emotion!]}" ` +
            `fill-opacity="${(0.35 + 0.65 * p).toFixed(2)}"><title>${esc(
              `${fmtTime(s.start)}-${fmtTime(s.end)} ${s.emotion} ${(100 * p).toFixed(0)}%: ${s.text}`,
            )}</title></rect>`,
        );
        let yb = STRIP + BANDS;
        for (const c of classNames) {
          const h = BANDS * s.probabilities[c]!;
          yb -= h;
          if (h > 0.2) out.push(`<rect x="${a}" y="${yb.toFixed(2)}" width="${w}" height="${h.toFixed(2)}" fill="${colours[c]}"/>`);
        }
      }
      const words = s.text.trim();
      if (words && a >= wordsEnd) {
        const room = Math.max(b - a, Math.min(260, x(t1 - t0) - a));
        const maxChars = Math.floor(room / 5.6);
        if (maxChars >= 4) {
          const shown = words.length > maxChars ? `${words.slice(0, maxChars - 1)}…` : words;
          out.push(`<text x="${a + 1}" y="${STRIP + BANDS + 26}" font-size="10" fill="#222">${esc(shown)}</text>`);
          wordsEnd = a + shown.length * 5.6 + 8;
        }
      }
    }
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n');
}

export interface SummaryInput {
  file: string;
  seconds: number;
  segments: readonly AnalyzedSegment[];
  classNames: readonly string[];
  checkpoint: string;
  textSource: string;
  notes: readonly string[];
}

/** summary.md: share of speech time per emotion, and for each emotion its strongest moments with times and words. */
export function summaryMarkdown(r: SummaryInput): string {
  const judged = r.segments.filter((s) => s.status === 'ok' && s.probabilities);
  const speech = r.segments.reduce((a, s) => a + (s.end - s.start), 0);
  const judgedTime = judged.reduce((a, s) => a + (s.end - s.start), 0);
  const lines: string[] = [];
  lines.push(`# Emotions in ${r.file}`, '');
  lines.push(
    `- length ${fmtTime(r.seconds)}, speech ${fmtTime(speech)} (${r.seconds ? ((100 * speech) / r.seconds).toFixed(0) : 0}%) in ` +
      `${r.segments.length} segments, ` +
      `${judged.length} judged, ${r.segments.length - judged.length} not (too ` +
      `short${r.segments.some((s) => s.status === 'failed') ? ' or failed' : ''})`,
  );
  lines.push(`- model ${r.checkpoint}; words from ${r.textSource}`);
  for (const n of r.notes) lines.push(`- ${n}`);
  lines.push(
    '',
    '## Share of speech time per emotion',
    '',
    '| emotion | share of judged speech | time | segments |',
    '|---|---:|---:|---:|',
  );
  for (const c of r.classNames) {
    const mine = judged.filter((s) => s.emotion === c);
    const t = mine.reduce((a, s) => a + (s.end - s.start), 0);
    lines.push(`| ${c} | ${judgedTime ? ((100 * t) / judgedTime).toFixed(1) : '0.0'}% | ${fmtTime(t)} | ${mine.length} |`);
  }
  lines.push(
    '',
    '## Strongest moments',
    '',
    'For each emotion, the segments where the model was surest of it.',
    '',
    '| emotion | p | time | words |',
    '|---|---:|---|---|',
  );
  for (const c of r.classNames) {
    const best = judged
      .filter((s) => s.emotion === c)
      .sort((a, b) => b.probabilities![c]! - a.probabilities![c]!)
      .slice(0, 3);
    for (const s of best)
      lines.push(
        `| ${c} | ${(100 * s.probabilities![c]!).toFixed(0)}% | ${fmtTime(s.start)}-${fmtTime(s.end)} | ` +
          `${s.text.replace(/\|/g, '\\|') || '–'} |`,
      );
  }
  if (!judged.length) lines.push('', '(no segment long enough to judge)');
  return lines.join('\n') + '\n';
}
