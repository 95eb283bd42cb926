# fetch (hf | local | synthetic) -> filter -> normalized jsonl + filter_stats.json
# The raw splits are kept, not temp(): were they deleted, an edit of a dataset's filter would
# refetch them, and the refetched raw test split would rerun the dataset's pool search (hours
# over a 21M-passage corpus) although nothing it reads changed.


rule fetch:
    output:
        results("data/{task}/{dataset}/raw/train.jsonl"),
        results("data/{task}/{dataset}/raw/validation.jsonl"),
        results("data/{task}/{dataset}/raw/test.jsonl"),
        results("data/{task}/{dataset}/raw/passages.jsonl"),
        results("data/{task}/{dataset}/raw/fetch_stats.json"),
    log:
        results("logs/fetch/{task}/{dataset}.log"),
    benchmark:
        results("benchmarks/fetch/{task}/{dataset}.tsv")
    retries: 0
    conda:
        "../envs/main.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        source=source_params,
    script:
        "../workflow_scripts/fetch.py"


rule filter:
    input:
        rules.fetch.output,
        pool=pool_files,
    output:
        expand(
            results("data/{task}/{dataset}/{split}.jsonl"),
            split=SPLITS,
            allow_missing=True,
        ),
        results("data/{task}/{dataset}/passages.jsonl"),
        stats=results("data/{task}/{dataset}/filter_stats.json"),
    log:
        results("logs/filter/{task}/{dataset}.log"),
    benchmark:
        results("benchmarks/filter/{task}/{dataset}.tsv")
    retries: 0
    conda:
        "../envs/main.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        filter=filter_params,
    script:
        "../workflow_scripts/filter.py"
