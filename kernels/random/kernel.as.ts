// AssemblyScript kernels of the random family.
