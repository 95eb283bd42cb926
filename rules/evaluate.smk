# Every metric of the run's task -> metrics.json (values with signatures, or skip reasons).


rule evaluate:
    input:
        predictions="results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/predictions.jsonl",
        references="results/data/{task}/{dataset}/test.jsonl",
        passages=passages_of,
    output:
        "results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/metrics.json",
    log:
        "logs/evaluate/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    retries: 0
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


# Knowledge runs also in KILT's formats, so that KILT's official scripts can score them:
#   python kilt/eval_downstream.py kilt_guess.jsonl kilt_gold.jsonl (and eval_retrieval.py)
rule kilt_export:
    input:
        predictions="results/runs/knowledge/{dataset}/{model}/{method}/{variant}/seed{seed}/predictions.jsonl",
        references="results/data/knowledge/{dataset}/test.jsonl",
        passages=passages_of,
    output:
        guess="results/runs/knowledge/{dataset}/{model}/{method}/{variant}/seed{seed}/kilt/kilt_guess.jsonl",
        gold="results/runs/knowledge/{dataset}/{model}/{method}/{variant}/seed{seed}/kilt/kilt_gold.jsonl",
    log:
        "logs/kilt_export/knowledge/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/kilt_export/knowledge/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    retries: 0
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/kilt_export.py"
