# Decoding of the test split with the run's method; for co-supervision, first the passage
# index of the test dataset: its passages embedded by the run's Embseq (trained, or existing
# checkpoints) in shards (one job each, datasets.<d>.index.shards), merged into one faiss index.


rule embed_passages:
    input:
        unpack(embed_inputs),
    output:
        vectors="results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/index_shards/{shard}-of-{shards}.npy",
        ids="results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/index_shards/{shard}-of-{shards}.ids.json",
    log:
        "logs/embed_passages/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/{shard}-of-{shards}.log",
    benchmark:
        "benchmarks/embed_passages/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/{shard}-of-{shards}.tsv"
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        gpu=decode_gpu,
        mem_mb=decode_mem_mb,
        runtime=train_runtime,
    params:
        batch_size=embed_params,
        encoder=encoder_params,
    script:
        "../workflow_scripts/embed_passages.py"


rule build_index:
    input:
        index_shards,
    output:
        directory(
            "results/runs/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}/index"
        ),
    log:
        "logs/build_index/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/build_index/{task}/{dataset}/{model}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        index=index_params,
    script:
        "../workflow_scripts/build_index.py"


rule predict:
    input:
        unpack(predict_inputs),
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
        gpu=decode_gpu,
        mem_mb=decode_mem_mb,
        runtime=train_runtime,
    params:
        run=predict_params,
    script:
        "../workflow_scripts/predict.py"
