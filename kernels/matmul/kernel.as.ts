// AssemblyScript kernels of the matmul family.
