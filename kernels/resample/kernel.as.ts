// AssemblyScript kernels of the resample family.
