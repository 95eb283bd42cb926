# fetch (hf | local | synthetic) -> filter -> normalized jsonl + filter_stats.json


rule fetch:
    output:
        expand(DATA + "/raw/{split}.jsonl", split=SPLITS, allow_missing=True),
        DATA + "/raw/passages.jsonl",
        DATA + "/raw/fetch_stats.json",
    log:
        "logs/fetch/{task}/{dataset}.log",
    benchmark:
        "benchmarks/fetch/{task}/{dataset}.tsv"
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
    output:
        expand(DATA + "/{split}.jsonl", split=SPLITS, allow_missing=True),
        DATA + "/passages.jsonl",
        stats=DATA + "/filter_stats.json",
    log:
        "logs/filter/{task}/{dataset}.log",
    benchmark:
        "benchmarks/filter/{task}/{dataset}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        filter=filter_params,
    script:
        "../workflow_scripts/filter.py"
