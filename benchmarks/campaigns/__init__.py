"""Many runs: sweeps over grids (claimed cells, cluster launchers), tuning studies and the regression
baselines. Imports `spec`, `execution` and `reports`."""
