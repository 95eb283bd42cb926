# Base model per (model, dataset): a hub id / local path checked offline, a tiny model's
# pretrained checkpoint (models.<m>.pretrain: rule pretrain), or a tiny model with a tokenizer
# trained on the dataset's training split. Later rules read base.json.


rule base_model:
    input:
        unpack(base_model_inputs),
    output:
        directory("results/models/{model}/{dataset}"),
    log:
        "logs/base_model/{model}/{dataset}.log",
    benchmark:
        "benchmarks/base_model/{model}/{dataset}.tsv"
    retries: 0
    conda:
        "../envs/main.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        model=base_params,
    script:
        "../workflow_scripts/base_model.py"


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
        "logs/pretrain/{model}.log",
    benchmark:
        "benchmarks/pretrain/{model}.tsv"
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
        model=base_params,
        checkpoints=pretrained_file("checkpoints"),
    script:
        "../workflow_scripts/pretrain.py"
