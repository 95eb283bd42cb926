# fetch (hf | local | synthetic) -> filter (training splits) and filter_test (test split) ->
# normalized jsonl + filter statistics.
# The raw splits are kept, not temp(): were they deleted, an edit of a dataset's filter would
# refetch them, and the refetched raw test split would rerun the dataset's pool search (hours
# over a 21M-passage corpus) although nothing it reads changed.


rule fetch:
    input:
        config_files=source_files,
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
        **keyed("source", source_params),
        code=code_param("fetch"),
    script:
        "../workflow_scripts/fetch.py"


rule filter:
    input:
        rules.fetch.output,
    output:
        expand(
            results("data/{task}/{dataset}/{split}.jsonl"),
            split=("train", "validation", "passages"),
            allow_missing=True,
        ),
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
        **keyed("filter", filter_params),
        code=code_param("filter"),
    script:
        "../workflow_scripts/filter.py"


# The test split in a job of its own: a test-only setting (caps.test, the dataset's pool)
# retrains nothing. Its passages (test_passages.jsonl: the dataset's and its pool's) are what
# the test split retrieves from.
use rule filter as filter_test with:
    input:
        rules.fetch.output,
        pool=pool_files,
    output:
        results("data/{task}/{dataset}/test.jsonl"),
        results("data/{task}/{dataset}/test_passages.jsonl"),
        stats=results("data/{task}/{dataset}/filter_stats_test.json"),
    log:
        results("logs/filter_test/{task}/{dataset}.log"),
    benchmark:
        results("benchmarks/filter_test/{task}/{dataset}.tsv")
    params:
        **keyed("filter", filter_test_params),
        code=code_param("filter"),
