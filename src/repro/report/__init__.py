"""The report stage: tables, plots, significance marks and report pages over every run.

Empty on purpose: Snakemake imports repro.report.ablations while it parses the DAG, and importing
this package must not load pandas or matplotlib.
"""
