// The confusion matrix as a picture: an SVG written here (rows = true class, columns = predicted; each cell shows
// its count and its share of the row, shaded by that row-normalised share), and a PNG rendered from the SVG by
// @resvg/resvg-js (a native Rust renderer; no browser, no canvas).

import type { Metrics } from './metrics.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Width of a label in px at the given font size (rough, for layout: 0.6 em per character). */
const textWidth = (s: string, size: number) => s.length * size * 0.6;

export function confusionSvg(
  m: Pick<Metrics, 'confusion' | 'classNames' | 'accuracy' | 'weightedF1' | 'macroF1' | 'n'>,
  title = 'Confusion matrix',
): string {
  const K = m.classNames.length;
  const cell = K <= 8 ? 84 : 56;
  const font = 14;
  const left = Math.max(90, ...m.classNames.map((c) => textWidth(c, font) + 40));
  const top = 90 + Math.max(0, ...m.classNames.map((c) => textWidth(c, font) * 0.7));
  const overhang = Math.max(0, ...m.classNames.map((c) => textWidth(c, font) * 0.82 - cell / 2)); // rotated column labels
  const width = left + K * cell + Math.max(130, overhang + 20);
  const height = top + K * cell + 70;
  const rows = m.confusion.map((r) => r.reduce((a, b) => a + b, 0));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`,
  );
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="28" font-size="18" font-weight="bold" text-anchor="middle">${esc(title)}</text>`);
  out.push(
    `<text x="${width / 2}" y="50" font-size="13" text-anchor="middle" fill="#333" xml:space="preserve">n = ${m.n}  ·  accuracy ` +
      `${(100 * m.accuracy).toFixed(1)}%  ·  ` +
      `weighted F1 ${(100 * m.weightedF1).toFixed(1)}  ·  macro F1 ${(100 * m.macroF1).toFixed(1)}</text>`,
  );
  // Axis titles.
  out.push(
    `<text x="${left + (K * cell) / 2}" y="${top - Math.max(0, ...m.classNames.map((c) => textWidth(c, font) * 0.7)) - 14}" ` +
      `font-size="14" text-anchor="middle" font-weight="bold">predicted</text>`,
  );
  out.push(
    `<text x="18" y="${top + (K * cell) / 2}" font-size="14" text-anchor="middle" font-weight="bold" transform="rotate(-90 18 ` +
      `${top + (K * cell) / 2})">true</text>`,
  );
  for (let j = 0; j < K; j++) {
    const x = left + j * cell + cell / 2;
    out.push(
      `<text x="${x}" y="${top - 8}" font-size="${font}" text-anchor="start" transform="rotate(-35 ${x} ` +
        `${top - 8})">${esc(m.classNames[j]!)}</text>`,
    );
  }
  for (let i = 0; i < K; i++) {
    const y = top + i * cell;
    out.push(`<text x="${left - 8}" y="${y + cell / 2 + 5}" font-size="${font}" text-anchor="end">${esc(m.classNames[i]!)}</text>`);
    for (let j = 0; j < K; j++) {
      const x = left + j * cell;
      const count = m.confusion[i]![j]!;
      const share = rows[i] ? count / rows[i]! : 0;
      // White to dark blue by the row share; text switches to white on dark cells.
      const shade = (a: number, b: number) => Math.round(a + (b - a) * share);
      const fill = `rgb(${shade(255, 8)},${shade(255, 48)},${shade(255, 107)})`;
      const ink = share > 0.5 ? 'white' : '#111';
      out.push(
        `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="${i === j ? '#111' : '#bbb'}" ` +
          `stroke-width="${i === j ? 2 : 1}"/>`,
      );
      out.push(
        `<text x="${x + cell / 2}" y="${y + cell / 2 - 2}" font-size="${font + 3}" font-weight="bold" text-anchor="middle" ` +
          `fill="${ink}">${count}</text>`,
      );
      out.push(
        `<text x="${x + cell / 2}" y="${y + cell / 2 + 16}" font-size="12" text-anchor="middle" ` +
          `fill="${ink}">${(100 * share).toFixed(0)}%</text>`,
      );
    }
    out.push(`<text x="${left + K * cell + 10}" y="${y + cell / 2 + 5}" font-size="12" fill="#333">n=${rows[i]}</text>`);
  }
  // Legend: the shading scale.
  const lx = left + K * cell + 62;
  out.push(
    `<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="rgb(255,255,255)"/><stop ` +
      `offset="1" stop-color="rgb(8,48,107)"/></linearGradient></defs>`,
  );
  out.push(`<rect x="${lx}" y="${top}" width="16" height="${K * cell}" fill="url(#scale)" stroke="#999"/>`);
  out.push(
    `<text x="${lx + 22}" y="${top + 10}" font-size="11">100%</text><text x="${lx + 22}" y="${top + K * cell}" font-size="11">0%</text>`,
  );
  out.push(
    `<text x="${left + (K * cell) / 2}" y="${top + K * cell + 30}" font-size="12" text-anchor="middle" fill="#333">cells: count ` +
      `and share of the true class (row); shading = share</text>`,
  );
  out.push('</svg>');
  return out.join('\n');
}

/** The SVG rendered to PNG bytes at the given scale. */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    background: 'white',
  });
  return r.render().asPng();
}
