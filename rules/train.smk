# One training job per run; the method (sft, warmup, cosup) is a wildcard and a param.
# Checkpoints go to {run}/checkpoints, outside the outputs, so a killed job resumes on rerun.


rule train:
    input:
        data=expand(DATA + "/{split}.jsonl", split=("train", "validation"), allow_missing=True),
        base=BASE,
    output:
        model=directory(RUN + "/model"),
        log=RUN + "/train_log.jsonl",
    log:
        "logs/train/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    threads: 1
    resources:
        gpu=train_gpu,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        run=train_params,
        checkpoints=RUN + "/checkpoints",
    script:
        "../workflow_scripts/train.py"
