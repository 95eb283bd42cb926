# Tables, plots and the pages of the HTML report over all runs (a local rule: light, needs
# every run's outputs). `snakemake --report results/report.html` then collects every output
# marked with report() below (captions in report/*.rst).


rule report:
    input:
        metrics=all_metrics(),
        train_logs=all_train_logs(),
        predictions=all_predictions(),
        references=all_references(),
        filter_stats=all_filter_stats(),
        published=published_file(),
    output:
        tables=report_tables(),
        cells=report_cells(),
        main_plot=report(
            results("plots/main_metric.png"),
            caption="../report/main_metric.rst",
            category="Plots",
            subcategory="Main metric",
            labels={"figure": "main metric per dataset and method"},
        ),
        curves_plot=report(
            results("plots/training_curves.png"),
            caption="../report/training_curves.rst",
            category="Plots",
            subcategory="Training curves",
            labels={
                "task": "all",
                "dataset": "all",
                "model": "all",
                "method": "all",
                "variant": "all",
                "seed": "all",
            },
        ),
        run_curves=run_curve_plots(),
        ablations=ablation_plots(),
        warmup=warmup_plots(),
        warmup_tables=warmup_tables(),
        pdfs=plot_pdfs(),
        configs=run_config_files(),
        runs_page=report(
            results("report/runs.html"),
            caption="../report/runs.rst",
            category="Runs",
            subcategory="Overview",
            labels={"page": "metrics, provenance and config of every run"},
        ),
        data_page=report(
            results("report/data.html"),
            caption="../report/data.rst",
            category="Data",
            labels={"page": "filter statistics per dataset and split"},
        ),
    log:
        results("logs/report.log"),
    benchmark:
        results("benchmarks/report.tsv")
    localrule: True
    conda:
        "../envs/main.yaml"
    params:
        report=report_params(),
        code=code_param("report"),
    script:
        "../workflow_scripts/report.py"
