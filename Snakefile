# Reproduction pipeline for Warmup Generations (arXiv 2502.12304) and semiparametric
# token-sequence co-supervision (arXiv 2403.09024). See README.md and config/README.md.
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless config files are given on the command line (a paper config or
# the test config then replaces it instead of being merged into it). Found beside this file, so
# that `snakemake -s <this>/Snakefile --directory <elsewhere>` runs it too; a workflow that uses
# this one as a module passes its own config instead.
if not workflow.overwrite_configfiles:

    configfile: workflow.source_path("config/config.yaml")


# rules/common.smk validates the config (config/schema.yaml, then repro.config_checks) before
# anything reads it: a wrong key stops here, naming it.


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/pools.smk"
include: "rules/models.smk"
include: "rules/train.smk"
include: "rules/predict.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
