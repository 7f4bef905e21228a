// Plot axes (viz/plot.ts): a log axis is labelled at several values whatever its range.

import { expect, test } from 'vitest';
import { linePlot } from '../../viz/plot.ts';

/** The values written at the y axis (right-aligned labels left of the plot). */
const yLabels = (svg: string) => [...svg.matchAll(/<text x="64" y="[^"]+" text-anchor="end">([^<]+)<\/text>/g)].map((m) => Number(m[1]));

const plot = (lo: number, hi: number) => linePlot([{ label: 'loss', color: '#000', points: [[0, lo], [1, hi]] }], { title: 't', xLabel: 'x', yLabel: 'y', logY: true }).svg;

test.each([
  [150, 300],
  [30, 900],
  [50, 5000],
  [2, 2e6],
  [1000, 1100],
])('a log axis from %d to %d has at least three labelled ticks, all inside the range and increasing', (lo, hi) => {
  const v = yLabels(plot(lo, hi));
  expect(v.length).toBeGreaterThanOrEqual(3);
  expect(v.every((x) => x >= lo * 0.999 && x <= hi * 1.001)).toBe(true);
  expect([...v].sort((a, b) => a - b)).toEqual(v);
});

test('decades are labelled at powers of ten', () => {
  expect(yLabels(plot(50, 5000))).toEqual(expect.arrayContaining([100, 1000]));
});
