"""What the result rows say: tables with significance marks, figures, tuning gains. Imports `spec` and
`execution` (records, result files) only."""
