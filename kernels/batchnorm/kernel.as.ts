// AssemblyScript kernels of the batchnorm family.
