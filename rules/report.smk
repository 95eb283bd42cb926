# Tables and plots over all runs (a local rule: light, needs every run's outputs).


rule report:
    input:
        metrics=all_metrics(),
        train_logs=all_train_logs(),
    output:
        tables=expand("results/tables/{task}.{ext}", task=TASKS, ext=("md", "csv")),
        main_plot="results/plots/main_metric.png",
        curves_plot="results/plots/training_curves.png",
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    localrule: True
    conda:
        "../envs/main.yaml"
    params:
        baseline=config["report"]["baseline_method"],
    script:
        "../workflow_scripts/report.py"
