"""Entry points that wire datasets, methods and metrics: runs, configs, results."""
