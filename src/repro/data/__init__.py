"""Data layer: normalized record schema (schema), dataset sources (sources), synthetic
generators (synthetic), filters (filters), converters of released formats.

Empty on purpose: Snakemake imports repro.data.schema while it parses the workflow, and a
package that imported its modules here would load numpy and the rest with it."""
