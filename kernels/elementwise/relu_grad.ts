// Kept for existing imports; the pointwise activation gradients live in pointwise_grad.ts.
export { reluGrad } from './pointwise_grad.ts';
