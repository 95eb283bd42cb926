# Decoding of the test split with the run's method.


rule predict:
    input:
        model="results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/model",
        base="results/models/{model}/{dataset}",
        test="results/data/{task}/{dataset}/test.jsonl",
    output:
        "results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/predictions.jsonl",
    log:
        "logs/predict/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/predict/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        gpu=train_gpu,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        run=predict_params,
    script:
        "../workflow_scripts/predict.py"
