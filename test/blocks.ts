// The paper's residual Down and Up blocks (statistical-cell.md §1.1, §1.2), composed from the
// runtime's ops through layers.ts; parameter names as in the block fixtures.

import type { Emitter } from '../kernels/types.ts';
import { OpError, fmtShape } from '../kernels/types.ts';
import { batchNorm, snConv, snConvTranspose, type ParamMap } from '../runtime/layers.ts';

export interface BlockConfig {
  block: 'down' | 'up';
  dims: number;
  activation: 'relu' | 'softplus';
}

export interface BlockInputs<T> {
  x: T;
  /** Reference image at the block's output resolution [B, Cr, …S]. */
  ref?: T;
  /** Class one-hot [B, K]. */
  classOnehot?: T;
}

/** ReLU(BN(conv1×1(c))): one conditioning path, cout channels. */
function condPath<T>(em: Emitter<T>, p: ParamMap<T>, name: string, c: T, training: boolean): T {
  return em.call('relu', [batchNorm(em, p, `${name}.bn`, snConv(em, p, `${name}.conv`, c), { training })])[0];
}

/**
 * One block. `p` holds its parameters and state under the fixture names (bypass, conv1, bn1,
 * conv2, bn2, cond_ref.{conv,bn}, cond_class.{conv,bn}); in training, spectral-norm u and the
 * running statistics in `p` are replaced by their updated tensors.
 */
export function block<T>(em: Emitter<T>, cfg: BlockConfig, p: ParamMap<T>, inp: BlockInputs<T>, training = true): T {
  const { x } = inp;
  let bypass: T;
  let residual: T;
  if (cfg.block === 'down') {
    bypass = snConv(em, p, 'bypass', em.call('avgpool', [x], { k: 2 })[0]);
    residual = snConv(em, p, 'conv1', x, { stride: 2, pad: 1 });
  } else {
    bypass = em.call('upsample', [snConv(em, p, 'bypass', x)], { k: 2 })[0];
    residual = snConvTranspose(em, p, 'conv1', x, { stride: 2, pad: 1 });
  }
  residual = em.call('relu', [batchNorm(em, p, 'bn1', residual, { training })])[0];
  residual = batchNorm(em, p, 'bn2', snConv(em, p, 'conv2', residual, { pad: 1 }), { training });
  let y = em.call('add', [bypass, residual])[0];

  if (inp.ref !== undefined) {
    const ys = em.shape(y);
    const rs = em.shape(inp.ref);
    if (rs.length !== ys.length || rs[0] !== ys[0] || rs.slice(2).some((d, i) => d !== ys[2 + i]))
      throw new OpError(`${cfg.block} block`, `the reference image must be at the block's output resolution ${fmtShape(ys.slice(2))} with batch ${ys[0]}`, [ys, rs], 'subsample it first');
    y = em.call('add', [y, condPath(em, p, 'cond_ref', inp.ref, training)])[0];
  }
  if (inp.classOnehot !== undefined) {
    const [b, k] = em.shape(inp.classOnehot);
    // [B, K] → [B, K, 1, 1(, 1)]: the path's output broadcasts over every voxel.
    const c = em.call('reshape', [inp.classOnehot], { shape: [b, k, ...Array(cfg.dims).fill(1)] })[0];
    y = em.call('add', [y, condPath(em, p, 'cond_class', c, training)])[0];
  }
  return em.call(cfg.activation, [y])[0];
}
