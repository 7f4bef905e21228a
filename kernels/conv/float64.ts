// Float64 references of the conv family: direct loops over the lifted 3D geometry, written for
// clarity rather than speed. They are the ground truth for both backends.

import type { Shape } from '../types.ts';
import type { ConvAttrs, ConvGeom, ConvGradWeightAttrs, ConvTransposeAttrs } from './geometry.ts';
import { convGeom, convGradWeightGeom, convTransposeGeom, vol } from './geometry.ts';

/**
 * Calls f(o, i, k) for every output position o, kernel tap k and the input position i = o·s − p + k
 * it reads, skipping taps that fall into the padding. Flat spatial indices.
 */
function taps(g: ConvGeom, inSize: ConvGeom['S'], outSize: ConvGeom['S'], f: (o: number, i: number, k: number) => void): void {
  const [S0, S1, S2] = inSize;
  const [O0, O1, O2] = outSize;
  const [K0, K1, K2] = g.K;
  for (let a = 0; a < O0; a++)
    for (let b = 0; b < O1; b++)
      for (let c = 0; c < O2; c++) {
        const o = (a * O1 + b) * O2 + c;
        for (let p = 0; p < K0; p++) {
          const i0 = a * g.stride[0] - g.pad[0] + p;
          if (i0 < 0 || i0 >= S0) continue;
          for (let q = 0; q < K1; q++) {
            const i1 = b * g.stride[1] - g.pad[1] + q;
            if (i1 < 0 || i1 >= S1) continue;
            for (let r = 0; r < K2; r++) {
              const i2 = c * g.stride[2] - g.pad[2] + r;
              if (i2 < 0 || i2 >= S2) continue;
              f(o, (i0 * S1 + i1) * S2 + i2, (p * K1 + q) * K2 + r);
            }
          }
        }
      }
}

/** y[b,co,o] = bias[co] + Σ_{ci,k} x[b,ci,o·s−p+k] · w[co,ci,k]. */
export function convRef(x: Float64Array, w: Float64Array, bias: Float64Array | null, xShape: Shape, wShape: Shape, attrs: ConvAttrs = {}): Float64Array {
  const g = convGeom(bias ? [xShape, wShape, [bias.length]] : [xShape, wShape], attrs);
  const sv = vol(g.S), ov = vol(g.O), kv = vol(g.K);
  const y = new Float64Array(g.B * g.Co * ov);
  for (let b = 0; b < g.B; b++)
    for (let co = 0; co < g.Co; co++) {
      const yo = (b * g.Co + co) * ov;
      if (bias) y.fill(bias[co], yo, yo + ov);
      for (let ci = 0; ci < g.Ci; ci++) {
        const xo = (b * g.Ci + ci) * sv;
        const wo = (co * g.Ci + ci) * kv;
        taps(g, g.S, g.O, (o, i, k) => (y[yo + o] += x[xo + i] * w[wo + k]));
      }
    }
  return y;
}

/** The adjoint of conv in x: y[b,co,i·s−p+k] += x[b,ci,i] · w[ci,co,k], plus bias[co]. */
export function convTransposeRef(x: Float64Array, w: Float64Array, bias: Float64Array | null, xShape: Shape, wShape: Shape, attrs: ConvTransposeAttrs = {}): Float64Array {
  const g = convTransposeGeom(bias ? [xShape, wShape, [bias.length]] : [xShape, wShape], attrs);
  const sv = vol(g.S), ov = vol(g.O), kv = vol(g.K);
  const y = new Float64Array(g.B * g.Co * ov);
  for (let b = 0; b < g.B; b++)
    for (let co = 0; co < g.Co; co++) {
      const yo = (b * g.Co + co) * ov;
      if (bias) y.fill(bias[co], yo, yo + ov);
      for (let ci = 0; ci < g.Ci; ci++) {
        const xo = (b * g.Ci + ci) * sv;
        const wo = (ci * g.Co + co) * kv;
        // The input x plays conv's output role: its position i scatters to o = i·s − p + k.
        taps(g, g.O, g.S, (i, o, k) => (y[yo + o] += x[xo + i] * w[wo + k]));
      }
    }
  return y;
}

/** dw[co,ci,k] = Σ_{b,o} dy[b,co,o] · x[b,ci,o·s−p+k]: conv's weight gradient. */
export function convGradWeightRef(x: Float64Array, dy: Float64Array, xShape: Shape, dyShape: Shape, attrs: ConvGradWeightAttrs): Float64Array {
  const g = convGradWeightGeom([xShape, dyShape], attrs);
  const sv = vol(g.S), ov = vol(g.O), kv = vol(g.K);
  const dw = new Float64Array(g.Co * g.Ci * kv);
  for (let b = 0; b < g.B; b++)
    for (let co = 0; co < g.Co; co++) {
      const yo = (b * g.Co + co) * ov;
      for (let ci = 0; ci < g.Ci; ci++) {
        const xo = (b * g.Ci + ci) * sv;
        const wo = (co * g.Ci + ci) * kv;
        taps(g, g.S, g.O, (o, i, k) => (dw[wo + k] += dy[yo + o] * x[xo + i]));
      }
    }
  return dw;
}
