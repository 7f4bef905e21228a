// AssemblyScript kernels of the spectral family.
