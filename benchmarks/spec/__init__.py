"""What a run is: the declarations of methods and datasets (registry), the options of their classes (schema)
and a run's settings resolved in layers and checked (config). Imports nothing else of the suite's benchmarks."""
