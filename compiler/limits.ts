// The compiler's budgets: a model is a small program run at compile time, and a hostile or
// mistaken one must end in a located diagnostic (SC4018) rather than hours of work or an
// out-of-memory abort. Each is far above what a real model needs (the paper's run a few hundred
// loop iterations and hold tensors of a few million elements).

/** Loop iterations in one build of a graph. */
export const MAX_ITERATIONS = 1_000_000;
/** Elements of a compile-time list (a range, `repeat`). */
export const MAX_LIST = 1_000_000;
/** Elements of one tensor. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31;
