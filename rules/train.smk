# One training job per run; the method (sft, warmup, cosup) is a wildcard and a param.
# Checkpoints go to {run}/checkpoints, outside the outputs, so a killed job resumes on rerun.
# A trained model is protected (read-only once written): a plan that would train it again
# stops before any job, naming it; delete the model directory (or chmod -R u+w it) to retrain.
# A job asking for k > 1 GPUs trains in k processes on its node (repro.launch: torchrun).
# Co-supervision's `separate` trains Gen (rule train, NTP alone) and Embseq (rule
# train_embseq, into {run}/embseq) in two jobs: they run in parallel and resume on their own.


rule train:
    input:
        data=expand(
            results("data/{task}/{dataset}/{split}.jsonl"),
            split=("train", "validation", "passages"),
            allow_missing=True,
        ),
        base=results("models/{model}/{dataset}"),
        config_files=train_option_files,
    output:
        model=protected(directory(run_file("model"))),
        log=run_file("train_log.jsonl"),
    log:
        results(f"logs/train/{RUN_ID}.log"),
    benchmark:
        results(f"benchmarks/train/{RUN_ID}.tsv")
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
        **keyed("run", train_params),
        checkpoints=run_file("checkpoints"),
        code=code_param("train", per_method=True),
    script:
        "../workflow_scripts/train.py"


use rule train as train_embseq with:
    output:
        model=protected(directory(run_file("embseq"))),
        log=run_file("train_log_embseq.jsonl"),
    log:
        results(f"logs/train_embseq/{RUN_ID}.log"),
    benchmark:
        results(f"benchmarks/train_embseq/{RUN_ID}.tsv")
    params:
        **keyed("run", train_embseq_params),
        checkpoints=run_file("checkpoints_embseq"),
        code=code_param("train", per_method=True),
