// The matmul benchmark: one square 1024³ product (2.1 GFLOP), the classic ceiling check.

import type { Task } from './common.ts';
import { MATMUL } from './shapes.ts';

export function matmulTasks(o: { size?: number } = {}): Task[] {
  if (!o.size) return [MATMUL];
  return [{ kind: 'matmul', M: o.size, N: o.size, K: o.size }];
}
