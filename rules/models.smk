# Base model per (model, dataset): a hub id / local path checked offline, or a tiny model with
# a tokenizer trained on the dataset's training split. Later rules read base.json. A model of
# kind hf only resolves its config: a local rule (no cluster job); a tiny one is built in a job.


rule base_model:
    input:
        train=train_split_of_dataset,
        config_files=model_files,
    output:
        directory(results("models/{model}/{dataset}")),
    log:
        results("logs/base_model/{model}/{dataset}.log"),
    benchmark:
        results("benchmarks/base_model/{model}/{dataset}.tsv")
    wildcard_constraints:
        model=TINY_MODELS,
    retries: 0
    conda:
        "../envs/main.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        model=base_params,
        code=code_param("base_model"),
    script:
        "../workflow_scripts/base_model.py"


use rule base_model as base_model_hub with:
    wildcard_constraints:
        model=HUB_MODELS,
    localrule: True
