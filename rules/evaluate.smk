# COMET of a translation run, in the COMET environment (unbabel-comet needs transformers<5):
# envs/comet.yaml under --sdm conda, else the .venv-comet interpreter of `make comet-env`.


rule comet:
    input:
        predictions=run_file("predictions.jsonl"),
        references=results("data/{task}/{dataset}/test.jsonl"),
        config_files=comet_model_files,
    output:
        run_file("comet.json"),
    log:
        results(f"logs/comet/{RUN_ID}.log"),
    benchmark:
        results(f"benchmarks/comet/{RUN_ID}.tsv")
    retries: 0
    conda:
        "../envs/comet.yaml"
    threads: 2
    resources:
        gpu=config["metrics"]["comet"].get("gpus", 0),
        mem_mb=12000,
        runtime=120,
    params:
        **keyed("comet", comet_params),
        code=code_param("score_comet"),
    script:
        "../workflow_scripts/score_comet.py"


# Every metric of the run's task -> metrics.json (values with signatures, or skip reasons).


rule evaluate:
    input:
        predictions=run_file("predictions.jsonl"),
        references=results("data/{task}/{dataset}/test.jsonl"),
        passages=passages_of,
        comet=comet_of,
        config_files=metric_model_files,
    output:
        run_file("metrics.json"),
    log:
        results(f"logs/evaluate/{RUN_ID}.log"),
    benchmark:
        results(f"benchmarks/evaluate/{RUN_ID}.tsv")
    retries: 0
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        **keyed("metrics", evaluate_params),
        code=code_param("evaluate"),
    script:
        "../workflow_scripts/evaluate.py"


# The evaluate jobs that load the TRUE NLI model (T5-11B: claim recall, span grounding): one GPU
# and the memory and time of metrics.true_nli.resources; the profile sends them to the GPU
# partition by this rule's name.
use rule evaluate as evaluate_nli with:
    wildcard_constraints:
        task=TRUE_NLI_RUNS["task"],
        dataset=TRUE_NLI_RUNS["dataset"],
        method=TRUE_NLI_RUNS["method"],
    resources:
        gpu=TRUE_NLI_JOB["gpu"],
        gres=gres(TRUE_NLI_JOB["gpu"]),
        cpus_per_gpu=4,
        mem_mb=TRUE_NLI_JOB["mem_mb"],
        runtime=TRUE_NLI_JOB["runtime"],


ruleorder: evaluate_nli > evaluate


# Knowledge runs also in KILT's formats, so that KILT's official scripts can score them:
#   python kilt/eval_downstream.py kilt_guess.jsonl kilt_gold.jsonl (and eval_retrieval.py)
rule kilt_export:
    input:
        predictions=run_file("predictions.jsonl", task="knowledge"),
        references=results("data/knowledge/{dataset}/test.jsonl"),
        passages=passages_of,
    output:
        guess=run_file("kilt/kilt_guess.jsonl", task="knowledge"),
        gold=run_file("kilt/kilt_gold.jsonl", task="knowledge"),
    log:
        results(f"logs/kilt_export/{KNOWLEDGE_RUN_ID}.log"),
    benchmark:
        results(f"benchmarks/kilt_export/{KNOWLEDGE_RUN_ID}.tsv")
    retries: 0
    conda:
        "../envs/main.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_param("kilt_export"),
    script:
        "../workflow_scripts/kilt_export.py"
