// The compiler's budgets: a model is a small program run at compile time, and a hostile or
// mistaken one must end in a located diagnostic (SC4018) rather than hours of work or an
// out-of-memory abort. Each is far above what a real model needs (the paper's run a few hundred
// loop iterations and hold tensors of a few million elements).

import type { Span } from '../dsl/diagnostics.ts';
import { MAX_NESTING } from '../dsl/index.ts';
import { fail } from './context.ts';
import { listSize, type Val } from './values.ts';

/** Loop iterations in one build of a graph. */
export const MAX_ITERATIONS = 1_000_000;
/** Elements of a compile-time list (a range, `repeat`), counting those of the lists inside it. */
export const MAX_LIST = 1_000_000;
/** Lists inside lists: as deep as an expression may nest, so that walks over them cannot overflow the stack. */
export const MAX_LIST_DEPTH = MAX_NESTING;
/**
 * Work of one build: expressions evaluated plus list elements made (a list is work in proportion
 * to its length). Loops and lists are each bounded, but not their product: a loop of 10^6 turns
 * over a 1,000-operator expression, or adding lists of 10^6 in a loop, ran for minutes. The
 * paper's models take a few thousand; 10^7 is about a second.
 */
export const MAX_STEPS = 10_000_000;
/**
 * Graph ops of one build (before autodiff, which about quadruples a training step's). The
 * paper's largest training step has 318; a loop or blocks that each call the next twice built
 * millions (gigabytes, and passes over the graph that took minutes). At the limit a compile
 * takes about 2 s and 300 MB.
 */
export const MAX_NODES = 10_000;
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

/** SC4018 at `span` when `list` holds, with the lists inside it, more than MAX_LIST elements or nests deeper than MAX_LIST_DEPTH. */
export function checkList(list: readonly Val[], span: Span): void {
  const { elements, depth } = listSize(list);
  if (elements > MAX_LIST)
    fail('SC4018', span, { what: `a list of ${elements.toLocaleString('en-US')} elements${elements > list.length ? ' (counting those of the lists inside it)' : ''}`, limit: `${MAX_LIST.toLocaleString('en-US')} elements` });
  if (depth > MAX_LIST_DEPTH) fail('SC4018', span, { what: `a list nested ${depth} deep`, limit: `${MAX_LIST_DEPTH} levels` });
}
