# Per-question candidate pools (datasets.<d>.pool -> pools.<p>; repro.pools): the pool's corpus
# (KILT's knowledge source chunked first), its embeddings in shards (one job, one GPU each; or
# Contriever's precomputed files converted), then each test set's top-k per question by exact
# search. The dataset's filter writes the pools into its test split as `candidates`.


rule pool_corpus:
    input:
        pool_corpus_files,
    output:
        results("pools/{pool}/corpus.jsonl"),
    log:
        results("logs/pool_corpus/{pool}.log"),
    benchmark:
        results("benchmarks/pool_corpus/{pool}.tsv")
    wildcard_constraints:
        pool="[^/]+",
    retries: 0
    conda:
        "../envs/main.yaml"
    resources:
        mem_mb=4000,
        runtime=720,
    params:
        **keyed("corpus", pool_corpus_params),
        code=code_param("pool_corpus"),
    script:
        "../workflow_scripts/pool_corpus.py"


rule pool_embeddings:
    input:
        pool_corpus_input,
        pool_embed_files,
    output:
        vectors=results("pools/{pool}/embeddings/{shard}-of-{shards}.npy"),
        ids=results("pools/{pool}/embeddings/{shard}-of-{shards}.ids.json"),
    log:
        results("logs/pool_embeddings/{pool}/{shard}-of-{shards}.log"),
    benchmark:
        results("benchmarks/pool_embeddings/{pool}/{shard}-of-{shards}.tsv")
    wildcard_constraints:
        pool="[^/]+",
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        gpu=pool_embed_gpu,
        gres=pool_embed_gres,
        mem_mb=pool_mem_mb,
        runtime=pool_runtime,
    params:
        **keyed("pool", pool_embed_params),
        code=code_param("pool_embeddings"),
    script:
        "../workflow_scripts/pool_embeddings.py"


rule search_pools:
    input:
        unpack(pool_search_inputs),
    output:
        candidates=results("pools/{pool}/{dataset}/candidates.jsonl"),
        passages=results("pools/{pool}/{dataset}/passages.jsonl"),
    log:
        results("logs/search_pools/{pool}/{dataset}.log"),
    benchmark:
        results("benchmarks/search_pools/{pool}/{dataset}.tsv")
    wildcard_constraints:
        pool="[^/]+",
    retries: 0
    conda:
        "../envs/main.yaml"
    threads: 4
    resources:
        gpu=pool_search_gpu,
        gres=pool_search_gres,
        mem_mb=pool_mem_mb,
        runtime=pool_runtime,
    params:
        **keyed("pool", pool_search_params),
        code=code_param("search_pools"),
    script:
        "../workflow_scripts/search_pools.py"


# The same jobs where the pool's config asks for a GPU (pools.<p>.resources.gpu; embedding only
# when it is not converting precomputed vectors): the profile sends these rules to the GPU
# partition, the ones above to the CPU partition.
use rule pool_embeddings as pool_embeddings_gpu with:
    wildcard_constraints:
        pool=GPU_POOLS["embed"],


use rule search_pools as search_pools_gpu with:
    wildcard_constraints:
        pool=GPU_POOLS["search"],


ruleorder: pool_embeddings_gpu > pool_embeddings
ruleorder: search_pools_gpu > search_pools
