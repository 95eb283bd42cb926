# Decoding of the test split with the run's method.


rule predict:
    input:
        model=RUN + "/model",
        base=BASE,
        test=DATA + "/test.jsonl",
    output:
        RUN + "/predictions.jsonl",
    log:
        "logs/predict/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/predict/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    threads: 1
    resources:
        gpu=train_gpu,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        run=predict_params,
    script:
        "../workflow_scripts/predict.py"
