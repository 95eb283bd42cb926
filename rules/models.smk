# Base model per (model, dataset): a hub id / local path checked offline, a tiny model's
# pretrained checkpoint (models.<m>.pretrain: rule pretrain), or a tiny model with a tokenizer
# trained on the dataset's training split. Later rules read base.json. A model of kind hf only
# resolves its config: a local rule (no cluster job); a tiny one is built in a job.


rule base_model:
    input:
        unpack(base_model_inputs),
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
        **keyed("model", base_params),
        code=code_param("base_model"),
    script:
        "../workflow_scripts/base_model.py"


use rule base_model as base_model_hub with:
    wildcard_constraints:
        model=HUB_MODELS,
    localrule: True


# One pretraining job per tiny model with a `pretrain` section (repro.pretrain): tokenizer and
# model built and pretrained on the corpus; every run of the model starts from model/.
# Checkpoints go to checkpoints/, outside the outputs, so a killed job resumes on rerun.
rule pretrain:
    input:
        corpus=pretrain_corpus,
    output:
        model=directory(pretrained_file("model")),
        log=pretrained_file("train_log.jsonl"),
    log:
        results("logs/pretrain/{model}.log"),
    benchmark:
        results("benchmarks/pretrain/{model}.tsv")
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        gpu=model_resource("train", "gpu"),
        gres=model_resource("train", "gres"),
        cpus_per_gpu=4,
        nodes=1,
        mem_mb=model_resource("train", "mem_mb"),
        runtime=model_resource("train", "runtime"),
        slurm_extra=model_resource("train", "slurm_extra"),
    params:
        **keyed("model", base_params),
        checkpoints=pretrained_file("checkpoints"),
        code=code_param("pretrain"),
    script:
        "../workflow_scripts/pretrain.py"
