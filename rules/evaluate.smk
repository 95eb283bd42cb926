# Every metric of the run's task -> metrics.json (values with signatures, or skip reasons).


rule evaluate:
    input:
        predictions="results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/predictions.jsonl",
        references="results/data/{task}/{dataset}/test.jsonl",
    output:
        "results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/metrics.json",
    log:
        "logs/evaluate/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        metrics=evaluate_params,
    script:
        "../workflow_scripts/evaluate.py"
