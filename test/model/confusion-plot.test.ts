// The confusion-matrix picture: the SVG carries every label, count and row share; the PNG decodes as a PNG of the
// SVG's size times the scale.

import { describe, expect, it } from 'vitest';
import { computeMetrics, confusionSvg, svgToPng } from '@emofuse/model';

describe('confusion matrix picture', () => {
  const names = ['neutral', 'joy', 'surprise', 'anger', 'sadness', 'disgust', 'fear'];
  const labels = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 6, 0];
  const preds = [0, 0, 1, 0, 1, 1, 0, 2, 0, 3, 4, 4, 0, 6, 3, 0];
  const m = computeMetrics(labels, preds, names);
  it('SVG: labels, counts, row-normalised shares', () => {
    const svg = confusionSvg(m, 'test & <check>');
    for (const n of names) expect(svg.split(`>${n}</text>`).length - 1).toBe(2); // row and column label
    expect(svg).toContain('test &amp; &lt;check&gt;');
    // neutral row: 4 of 5 correct -> "4" and "80%".
    expect(svg).toMatch(/>4<\/text>\s*<text[^>]*>80%<\/text>/);
    expect(svg).toContain('n=5');
  });
  it('PNG: a valid image at twice the SVG size', async () => {
    const svg = confusionSvg(m);
    const png = await svgToPng(svg, 2);
    expect(Buffer.from(png.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
    const w = Number(/width="(\d+(\.\d+)?)"/.exec(svg)![1]);
    const view = new DataView(png.buffer, png.byteOffset);
    expect(Math.abs(view.getUint32(16) - w * 2)).toBeLessThanOrEqual(1); // IHDR width
    if (process.env.EMOFUSE_KEEP_PLOT) (await import('node:fs')).writeFileSync(process.env.EMOFUSE_KEEP_PLOT, png);
  });
});
