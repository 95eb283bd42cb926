# Decoding of the test split with the run's method; for co-supervision, first the passage
# index of the test dataset: its passages embedded by the run's Embseq (trained, or existing
# checkpoints) in shards (one job each, datasets.<d>.index.shards), merged into one faiss index.
# The shards are temp(): the index holds the same vectors (a flat index of a 7B Embseq is
# ~16 KB a passage, twice over with its shards); they are made again only when the index is.


rule embed_passages:
    input:
        unpack(embed_inputs),
    output:
        vectors=temp(run_file("index_shards/{shard}-of-{shards}.npy")),
        ids=temp(run_file("index_shards/{shard}-of-{shards}.ids.json")),
    log:
        results(f"logs/embed_passages/{RUN_ID}/{{shard}}-of-{{shards}}.log"),
    benchmark:
        results(f"benchmarks/embed_passages/{RUN_ID}/{{shard}}-of-{{shards}}.tsv")
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        gpu=model_resource("embed", "gpu"),
        gres=model_resource("embed", "gres"),
        cpus_per_gpu=4,
        mem_mb=model_resource("embed", "mem_mb"),
        runtime=model_resource("embed", "runtime"),
    params:
        **keyed("encoder", encoder_params),
        batch_size=embed_params,
        code=code_param("embed_passages"),
    script:
        "../workflow_scripts/embed_passages.py"


rule build_index:
    input:
        vectors=index_shards,
        ids=index_shard_ids,
    output:
        directory(run_file("index")),
    log:
        results(f"logs/build_index/{RUN_ID}.log"),
    benchmark:
        results(f"benchmarks/build_index/{RUN_ID}.tsv")
    retries: 0
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        mem_mb=index_resource("mem_mb"),
        runtime=index_resource("runtime"),
    params:
        **keyed("index", index_params),
        code=code_param("build_index"),
    script:
        "../workflow_scripts/build_index.py"


rule predict:
    input:
        unpack(predict_inputs),
    output:
        run_file("predictions.jsonl"),
    log:
        results(f"logs/predict/{RUN_ID}.log"),
    benchmark:
        results(f"benchmarks/predict/{RUN_ID}.tsv")
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        gpu=model_resource("decode", "gpu"),
        gres=model_resource("decode", "gres"),
        cpus_per_gpu=4,
        mem_mb=model_resource("decode", "mem_mb"),
        runtime=model_resource("decode", "runtime"),
    params:
        **keyed("run", predict_params),
        code=code_param("predict", per_method=True),
    script:
        "../workflow_scripts/predict.py"
