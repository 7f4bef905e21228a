// AssemblyScript kernels of the adam family.
