// The AssemblyScript entry: every family's kernels in one module over one imported memory.
export * from './elementwise/kernel.as';
export * from './conv/kernel.as';
export * from './matmul/kernel.as';
export * from './reduce/kernel.as';
export * from './resample/kernel.as';
export * from './batchnorm/kernel.as';
export * from './spectral/kernel.as';
export * from './random/kernel.as';
export * from './loss/kernel.as';
export * from './adam/kernel.as';
export * from './fill/kernel.as';
export * from './fused/kernel.as';
