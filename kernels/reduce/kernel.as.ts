// AssemblyScript kernels of the reduce family.
