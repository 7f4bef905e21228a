// What every figure shares: its font, a DOM for Observable Plot in Node (linkedom), and SVG → PNG
// through resvg (with the system's fonts, white behind).

import { Resvg } from '@resvg/resvg-js';
import { parseHTML } from 'linkedom';

export const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';

/** A document for Plot's `document` option: Plot builds its SVG in it. */
export const plotDocument = (): Document => parseHTML('<!DOCTYPE html><html><body></body></html>').document as unknown as Document;

export function svgToPng(svg: string): Uint8Array {
  return new Uint8Array(new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng());
}
