# Every metric of the run's task -> metrics.json (values with signatures, or skip reasons).


rule evaluate:
    input:
        predictions=RUN + "/predictions.jsonl",
        references=DATA + "/test.jsonl",
    output:
        RUN + "/metrics.json",
    log:
        "logs/evaluate/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        metrics=evaluate_params,
    script:
        "../workflow_scripts/evaluate.py"
