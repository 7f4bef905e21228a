// AssemblyScript kernels of the loss family.
