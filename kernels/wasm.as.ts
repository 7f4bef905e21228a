// The AssemblyScript entry: every family's kernels in one module over one imported memory.
export * from './elementwise/kernel.as';
