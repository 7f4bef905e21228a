// The compiler's budgets: a model is a small program run at compile time, and a hostile or
// mistaken one must end in a located diagnostic (SC4018) rather than hours of work or an
// out-of-memory abort. Each is far above what a real model needs (the paper's run a few hundred
// loop iterations and hold tensors of a few million elements).

import type { Span } from '../dsl/diagnostics.ts';
import { fail } from './context.ts';

/** Loop iterations in one build of a graph. */
export const MAX_ITERATIONS = 1_000_000;
/** Elements of a compile-time list (a range, `repeat`). */
export const MAX_LIST = 1_000_000;
/** Blocks inlined inside one another (the paper's nest four deep). */
export const MAX_BLOCK_DEPTH = 64;
/** Elements of one tensor (at the batch of the build): 8 GiB of float32, more than any device holds. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31;

/** SC4018 at `span` when a tensor of `shape` would hold more than MAX_TENSOR_ELEMENTS. */
export function checkElements(shape: readonly number[], span: Span): void {
  const n = shape.reduce((a, d) => a * d, 1);
  if (n > MAX_TENSOR_ELEMENTS)
    fail('SC4018', span, { what: `a tensor of shape [${shape.join(', ')}] (${n.toExponential(2)} elements)`, limit: `${MAX_TENSOR_ELEMENTS.toLocaleString('en-US')} elements per tensor` });
}
