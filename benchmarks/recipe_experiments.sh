#!/usr/bin/env bash
# The controlled runs of issue 10, all through run_relevance.py: one fold (0), the same seeded training and
# validation rows, the same step budget, seed 42; each run changes one thing against the reference.
#
#   bash benchmarks/recipe_experiments.sh RUN_NAME [RUN_NAME ...]     # run some of them (see the case below)
#   python benchmarks/recipe_experiments.py --mode table --runs_dir outputs/recipe
#
# Needs: the embedded model (python tools/prepare_model.py) and the folds
#   python make_folds.py --train_file ../shared/data/qc_dev.jsonl --output_dir outputs/folds_qc_dev
#   python make_folds.py --train_file ../shared/data/qi_dev.jsonl --output_dir outputs/folds_qi_dev
# and, for the translate arms, the QC folds with query_en from the embedded model (about 52 min at one thread):
#   python run_translate.py --model_name_or_path .cache/models/gemma-3-270m --dataset_name outputs/folds_qc_dev \
#       --output_dir outputs/folds_qc_dev_en --prefix_cache --cache_file outputs/translate/qc_dev_cache.sqlite
# and, for the unseen* arms, copies of the folds with some languages held out of training (see that script):
#   python benchmarks/unseen_languages.py --dataset_name outputs/folds_qc_dev --languages fr,ja \
#       --output_dir outputs/folds_qc_dev_unseenfrja     # (and _en_unseenfrja from outputs/folds_qc_dev_en)
# Sized for a shared 2-core CPU: 480 training rows, 60 steps of 8, 300 validation rows, one thread.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-.cache/models/gemma-3-270m}
RUNS=${RUNS:-outputs/recipe}
QC=${QC:-outputs/folds_qc_dev}
QI=${QI:-outputs/folds_qi_dev}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} TOKENIZERS_PARALLELISM=false

# Shared by every run: same rows (seeded subsets), same budget, no intermediate evaluation or checkpoints
# (the one evaluation is the final prediction on the 300 validation rows).
COMMON=(--model_name_or_path "$MODEL" --fold 0 --seed 42 --max_train_samples 480 --max_eval_samples 300
        --max_steps 60 --per_device_train_batch_size 8 --max_length 96
        --eval_strategy no --save_strategy no --load_best_model_at_end false --logging_steps 5)
# The candidate recipe: instruct template, score head from the " no"/" yes" LM-head rows, LoRA lr 2e-4,
# 10 % warm-up then cosine decay.
BEST=(--template instruct --score_init answer_tokens --learning_rate 2e-4 --lr_scheduler_type cosine --warmup_steps 0.1)

# The scale-up runs: the grid's best (random head), one epoch, and their row budgets (flags after COMMON override it).
SCALE=("${BEST[@]}" --score_init random --max_steps -1 --num_train_epochs 1)
QC_ALL=(--max_train_samples 1000000 --max_eval_samples 1000000)
QI_4K=(--max_train_samples 4000 --max_eval_samples 2000)

TOP6='.*\.layers\.(1[2-7])\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj'

run() {
  local name=$1; shift
  local out="$RUNS/$name"
  mkdir -p "$out"
  local cmd=("$PY" run_relevance.py "${COMMON[@]}" "$@" --output_dir "$out")
  printf '%q ' "${cmd[@]}" > "$out/command.txt"
  # run_relevance.py changes while the experiments run: record which version (and whether it was edited) ran.
  { git log -1 --format=%h -- run_relevance.py modeling_relevance.py; git status --short run_relevance.py modeling_relevance.py; } > "$out/code_version.txt" 2>&1 || true
  echo "== $name: $(cat "$out/command.txt")"
  local start=$SECONDS
  "${cmd[@]}" > "$out/train.log" 2>&1
  echo "$((SECONDS - start))" > "$out/wall_s.txt"
  echo "== $name done in $((SECONDS - start)) s"
}

# In a function called on the last line: bash reads a script as it runs, so editing this file while a long run
# is going would otherwise make it execute shifted text once the run ends.
main() {
for name in "$@"; do
  case $name in
    # Reference points
    qc_zero_shot)   run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --learning_rate 0 --max_steps 1 ;;
    qc_winners)     run "$name" --dataset_name "$QC" --task qc --template bare --score_init random \
                        --learning_rate 1e-5 --lr_scheduler_type constant --warmup_steps 0 ;;
    # The candidate and its one-change ablations
    qc_best)        run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" ;;
    qc_random_head) run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --score_init random ;;
    qc_bare)        run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --template bare ;;
    qc_lr5e-5)      run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --learning_rate 5e-5 ;;
    qc_lr1e-3)      run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --learning_rate 1e-3 ;;
    qc_sigmoid)     run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --num_labels 1 ;;
    qc_r8_attn)     run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --lora_r 8 --lora_alpha 16 \
                        --lora_target_modules q_proj k_proj v_proj o_proj ;;
    # LoRA on the top 6 of the 18 layers only (one regex, which trl passes to peft as a pattern): the backward pass
    # stops at layer 12, so a step costs about half as much on CPU.
    qc_top6)        run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --lora_target_modules "$TOP6" ;;
    # One-change ablations of the chosen recipe (random head), added after qc_random_head measured best
    qc_random_bare)   run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --score_init random --template bare ;;
    qc_random_lr1e-3) run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --score_init random --learning_rate 1e-3 ;;
    qc_smooth)      run "$name" --dataset_name "$QC" --task qc "${BEST[@]}" --label_smoothing_factor 0.1 ;;
    # Scale-up runs (the next step the 480-row grid pointed to): the chosen recipe (SCALE) for one epoch, QC on every
    # training row of fold 0 scored on the whole validation fold (--max_*_samples above any fold's size means
    # "all"), QI on a seeded subset of its 41k training rows scored on 2,000 validation rows. _lN keeps the first N
    # of the 18 layers (half the compute at 9; frozen features peak there).
    qc_all_rows)    run "$name" --dataset_name "$QC" --task qc "${SCALE[@]}" "${QC_ALL[@]}" ;;
    qc_all_rows_l9) run "$name" --dataset_name "$QC" --task qc "${SCALE[@]}" --num_hidden_layers 9 "${QC_ALL[@]}" ;;
    qi_4k)          run "$name" --dataset_name "$QI" --task qi "${SCALE[@]}" "${QI_4K[@]}" ;;
    qi_4k_l9)       run "$name" --dataset_name "$QI" --task qi "${SCALE[@]}" --num_hidden_layers 9 "${QI_4K[@]}" ;;
    qi_4k_l6)       run "$name" --dataset_name "$QI" --task qi "${SCALE[@]}" --num_hidden_layers 6 "${QI_4K[@]}" ;;
    # TAPT carried: the 9-layer QC run initialised from the 9-layer QI adapter (LoRA + score head), as the winners'
    # recipe does with the other task.
    qc_all_rows_l9_tapt) run "$name" --dataset_name "$QC" --task qc "${SCALE[@]}" --num_hidden_layers 9 \
                        --init_adapter "$RUNS/qi_4k_l9" "${QC_ALL[@]}" ;;
    # Twice the QI rows of qi_4k_l9 (same 9-layer recipe): does QI keep improving with data?
    qi_8k_l9)       run "$name" --dataset_name "$QI" --task qi "${SCALE[@]}" --num_hidden_layers 9 \
                        --max_train_samples 8000 --max_eval_samples 2000 ;;
    qi_zero_shot)   run "$name" --dataset_name "$QI" --task qi "${BEST[@]}" --learning_rate 0 --max_steps 1 ;;
    qi_winners)     run "$name" --dataset_name "$QI" --task qi --template bare --score_init random \
                        --learning_rate 1e-5 --lr_scheduler_type constant --warmup_steps 0 ;;
    qi_best)        run "$name" --dataset_name "$QI" --task qi "${BEST[@]}" ;;
    # Phase 3 (issue 14): the shipped recipe (recipes/gemma3-270m.yaml) on two validation folds, and one-change arms
    # against it. p3_<task>_<arm>_f<fold>; no intermediate evaluation, one final prediction on the validation rows
    # (QC: the whole fold; QI: 8,000 training rows, 2,000 validation rows, seeded).
    p3_*_f[0-9])
        local fold=${name##*_f} arm=${name#p3_}; arm=${arm%_f*}
        local task=${arm%%_*} rest=${arm#*_}
        local data=$QC rows=("${QC_ALL[@]}")
        [ "$task" = qi ] && { data=$QI; rows=(--max_train_samples 8000 --max_eval_samples 2000); }
        # qcqi: one multitask model, each task's rows as in its single-task reference (the caps are per task)
        [ "$task" = qcqi ] && { data=$QC,$QI task=qc,qi; rows=(--max_train_samples 8000 --max_eval_samples 2000); }
        local extra=()
        case $rest in
          ref) ;;
          ancestors) extra=(--hierarchy_ancestors 1) ;;
          mean) extra=(--pooling mean) ;;
          headlr) extra=(--score_learning_rate 2e-3) ;;  # 10x the recipe's LoRA rate
          epochs2) extra=(--num_train_epochs 2) ;;  # the same cosine schedule stretched over two passes
          sharedprefix) extra=(--shared_prefix true) ;;  # the reference again, its instruction run once per batch
          multitask) ;;  # with task qcqi: p3_qcqi_multitask_f0
          # the winners' translation augmentation: "query - query_en" from run_translate.py with the embedded model
          # (the same folds with a query_en column: outputs/folds_qc_dev_en, made as the header says)
          translate) data=${data}_en; extra=(--use_translation true) ;;
          translate43) data=${data}_en; extra=(--use_translation true --seed 43) ;;  # against seed43
          # languages never trained on: the folds with every row of those languages out of every fold's training
          # rows (benchmarks/unseen_languages.py writes outputs/folds_qc_dev_unseenfrja and the _en_ copy); they are
          # still scored in their own validation fold. translateunseen*: the same with query - query_en. A trailing
          # number is the training seed (unseenfrja43: seed 43).
          unseen*|translateunseen*)
            local held=${rest#translate} seed=42
            [[ $held =~ ^(.*[a-z])([0-9]+)$ ]] && { held=${BASH_REMATCH[1]}; seed=${BASH_REMATCH[2]}; }
            extra=(--seed "$seed")
            if [ "${rest#translate}" = "$rest" ]; then data=${data}_${held}
            else data=${data}_en_${held}; extra+=(--use_translation true); fi ;;
          seed43|seed44) extra=(--seed "${rest#seed}") ;;  # the reference under another seed: run-to-run variation
          # another seed on the reference's rows (QI draws its 8,000 / 2,000 rows with the seed): pairable with ref
          init43|init44) extra=(--seed "${rest#init}" --data_seed 42) ;;
          rank64) extra=(--lora_r 64 --lora_alpha 128) ;;  # 4x the recipe's LoRA rank, the same alpha / r
          lr*) extra=(--learning_rate "${rest#lr}") ;;  # another LoRA learning rate (recipe 2e-4), e.g. p3_qc_lr1e-4_f0
          l12) extra=(--num_hidden_layers 12) ;;  # the first 12 of the 18 layers instead of the recipe's 9
          # l12 under initN's seed, the reference's rows
          l12init43|l12init44) extra=(--num_hidden_layers 12 --seed "${rest#l12init}" --data_seed 42) ;;
          # TAPT (the winners' init): the other task's fold-0 reference adapter (LoRA + score head) as the start of
          # every fold; the tasks' folds are separate datasets, so no row leaks. Run p3_qi_ref_f0 / p3_qc_ref_f0 first.
          tapt) extra=(--init_adapter "$RUNS/p3_$([ "$task" = qi ] && echo qc || echo qi)_ref_f0") ;;
          # N training rows, one epoch (a seeded subset; smaller N: a subset of larger N), the reference's validation
          # rows: rows16k on QI is twice the reference's rows; on QC (about 7,400 training rows a fold) rows1330 and
          # rows2660 are about 18 % and 36 % of them (the learning curve of session 18). rows2660seed43: seed 43 draws
          # the rows and trains
          rows[0-9]*)
            local n=${rest#rows}
            [[ $n =~ ^([0-9]+k?)seed([0-9]+)$ ]] && { n=${BASH_REMATCH[1]}; extra=(--seed "${BASH_REMATCH[2]}"); }
            rows=(--max_train_samples "${n/k/000}" "${rows[@]:2}") ;;
          # QI: 12 layers on three times the reference's rows (a superset), one seed: the training time of l12 x 3 seeds
          l12rows24k) extra=(--num_hidden_layers 12); rows=(--max_train_samples 24000 --max_eval_samples 2000) ;;
          *) echo "unknown phase-3 arm $rest" >&2; exit 2 ;;
        esac
        run "$name" --config recipes/gemma3-270m.yaml --dataset_name "$data" --task "$task" --fold "$fold" \
            "${rows[@]}" --max_steps -1 --eval_strategy no --save_strategy no --load_best_model_at_end false \
            "${extra[@]}" ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
done
}

main "$@"; exit
