// AssemblyScript kernels of the conv family.
