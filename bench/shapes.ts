// The benchmark shapes: the convolutions of the 2D reference model's encoder (input
// [B, 2, 160, 96], Down blocks 2→32→64→128→256→512) and a square matmul.
//
// A Down block with input [B, cin, H, W] and output cout runs
//   down: conv k4 s2 p1, cin → cin     on the block input        [B, cin, H, W]
//   main: conv k3 s1 p1, cin → cout    at half resolution        [B, cin, H/2, W/2]
//   skip: conv k1 s1 p0, cin → cout    on the avg-pooled input   [B, cin, H/2, W/2]
// Every one of these 15 layers has a distinct shape.

import type { ConvLayer, Task } from './common.ts';

export const ENCODER_INPUT = { C: 2, H: 160, W: 96 };
export const ENCODER_WIDTHS = [32, 64, 128, 256, 512];

export function encoderLayers(B = 8): ConvLayer[] {
  const layers: ConvLayer[] = [];
  let { C: cin, H, W } = ENCODER_INPUT;
  ENCODER_WIDTHS.forEach((cout, i) => {
    const b = `d${i + 1}`;
    const h = Math.floor(H / 2);
    const w = Math.floor(W / 2);
    layers.push({ name: `${b}.down k4s2`, B, Ci: cin, H, W, Co: cin, K: 4, stride: 2, pad: 1 });
    layers.push({ name: `${b}.main k3`, B, Ci: cin, H: h, W: w, Co: cout, K: 3, stride: 1, pad: 1 });
    layers.push({ name: `${b}.skip k1`, B, Ci: cin, H: h, W: w, Co: cout, K: 1, stride: 1, pad: 0 });
    cin = cout;
    H = h;
    W = w;
  });
  return layers;
}

/** The few layers `--quick` and the WebGPU (software) rows use: one of each kind, mid-network. */
export const QUICK_LAYERS = ['d2.down k4s2', 'd3.main k3', 'd4.skip k1', 'd5.main k3'];

export const MATMUL: Task = { kind: 'matmul', M: 1024, N: 1024, K: 1024 };
