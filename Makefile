# The two commands: `make demo` and `make test`. Both build .venv from the pinned CPU
# requirements first, and only when it is missing or a requirements file changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
DEMO_DIR := data/demo
DEMO_SAVE := results/demo
# GoogLeNet trained from scratch does not learn the demo task within minutes on a CPU (see
# docs/demo.md); the demo uses the registry's ResNet-18. `make demo DEMO_BACKBONE=googlenet` runs GoogLeNet.
DEMO_BACKBONE ?= resnet18_v1
NUM_THREADS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: venv demo demo-googlenet compare compare-dtypes demo-range reproduce-demo test stress-dist bench clean-demo

$(STAMP): requirements-cpu.txt requirements-common.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-cpu.txt
	touch $(STAMP)

venv: $(STAMP)

# The demo's training command, without the EE setting and the run folder (demo and compare add them).
DEMO_TRAIN = OMP_NUM_THREADS=$(NUM_THREADS) $(PY) main.py --data_name=demo --data_dir=$(DEMO_DIR) \
		--gpu_idx=-1 --pretrained=none --backbone=$(DEMO_BACKBONE) --embed_dim=128 --image_size=64 \
		--loss=hphn_triplet --ee_l2norm=True --margin=0.1 \
		--batch_size=32 --num_instances=8 --num_workers=1 \
		--optim=adam --lr=0.0003 --lr_decay_factor=0.5 --lr_decay_epochs=120 \
		--epochs=180 --eval_epoch_term=15 --summary_step=5 --seed=0 \
		--keep_checkpoints=1 $(DEMO_FLAGS)

# The demo run is disposable: each `make demo` starts it afresh (a real run would be set aside by
# --overwrite=True instead, never deleted). One checkpoint is kept, so the folder stays small.
demo: venv
	$(PY) -m data.demo --out $(DEMO_DIR)
	rm -rf $(DEMO_SAVE)
	$(DEMO_TRAIN) --n_inner_pts=2 --save_dir=$(DEMO_SAVE)
	@echo "TensorBoard: $(VENV)/bin/tensorboard --logdir=results --samples_per_plugin=images=1000"

# The paper's recipe in miniature (docs/demo.md): GoogLeNet first learns the demo's 24 training
# classes with a proxy loss (Norm-SoftMax, 8 classes x 4 images a batch), which stands in for
# ImageNet pre-training; then EE + HPHN-triplet trains from those weights at the paper's learning
# rate (--pretrained takes the warm-up network's backbone; the embedding layer starts afresh).
WARMUP_EPOCHS ?= 400
GOOGLENET_EPOCHS ?= 180
DEMO_GOOGLENET := results/demo-googlenet
demo-googlenet: venv
	$(PY) -m data.demo --out $(DEMO_DIR)
	rm -rf $(DEMO_GOOGLENET)
	OMP_NUM_THREADS=$(NUM_THREADS) $(PY) main.py --data_name=demo --data_dir=$(DEMO_DIR) --gpu_idx=-1 \
		--pretrained=none --backbone=googlenet --embed_dim=128 --image_size=64 --loss=norm_softmax --n_inner_pts=0 \
		--batch_size=32 --num_instances=4 --num_workers=1 --optim=adam --lr=0.0003 \
		--lr_decay_factor=0.5 --lr_decay_epochs=300 --epochs=$(WARMUP_EPOCHS) --eval_epoch_term=50 \
		--summary_step=5 --seed=0 --keep_checkpoints=1 --save_dir=$(DEMO_GOOGLENET)/warmup
	$(DEMO_TRAIN) --backbone=googlenet --pretrained=$(DEMO_GOOGLENET)/warmup/model_best.params \
		--n_inner_pts=2 --lr=0.0001 --epochs=$(GOOGLENET_EPOCHS) --lr_decay_epochs=120 --eval_epoch_term=30 \
		--save_dir=$(DEMO_GOOGLENET)/ee

# The original README's picture in miniature: the demo with EE (n = 2) and without (n = 0), same
# budget, and both R@1 curves in one figure.
compare: venv
	$(PY) -m data.demo --out $(DEMO_DIR)
	for n in 2 0; do rm -rf results/inner-$$n && $(DEMO_TRAIN) --n_inner_pts=$$n --save_dir=results/inner-$$n || exit 1; done
	$(PY) -m tools.plot_runs results/inner-2 results/inner-0 --metric R@1 -o results/compare.png \
		--title "demo: HPHN-triplet with EE (n = 2) and without (n = 0)"

# bfloat16 against float32 on the demo over seeds (docs/mixed-precision.md), one OpenMP thread per
# run (`make -j2 compare-dtypes` runs two at a time): from scratch (DTYPE_SEEDS), and fine-tuned
# for 60 epochs from the float32 run of seed FINETUNE_FROM (FINETUNE_SEEDS). A run already in
# results/dtypes is kept; `rm -rf results/dtypes` starts afresh.
DTYPE_SEEDS ?= 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
FINETUNE_SEEDS ?= 0 1 2 3 4 5 6 7
FINETUNE_FROM ?= 4
DTYPE_RUNS := $(foreach s,$(DTYPE_SEEDS),$(foreach d,float32 bfloat16,results/dtypes/scratch-$(d)-s$(s)/results.json)) \
	$(foreach s,$(FINETUNE_SEEDS),$(foreach d,float32 bfloat16,results/dtypes/finetune-$(d)-s$(s)/results.json))
dtype = $(word 1,$(subst -s, ,$(1)))
seed = $(word 2,$(subst -s, ,$(1)))

$(DEMO_DIR)/train.txt: | venv
	$(PY) -m data.demo --out $(DEMO_DIR)

results/dtypes/%/results.json: NUM_THREADS = 1
.SECONDARY: results/dtypes/scratch-float32-s$(FINETUNE_FROM)/results.json
results/dtypes/scratch-%/results.json: | $(DEMO_DIR)/train.txt
	rm -rf $(@D) && mkdir -p results/dtypes
	$(DEMO_TRAIN) --n_inner_pts=2 --progress=False --dtype=$(call dtype,$*) \
		--seed=$(call seed,$*) --save_dir=$(@D) > $(@D).log 2>&1

results/dtypes/finetune-%/results.json: results/dtypes/scratch-float32-s$(FINETUNE_FROM)/results.json
	rm -rf $(@D) && mkdir -p results/dtypes
	$(DEMO_TRAIN) --n_inner_pts=2 --progress=False --dtype=$(call dtype,$*) --seed=$(call seed,$*) \
		--pretrained=results/dtypes/scratch-float32-s$(FINETUNE_FROM)/model_last.params \
		--epochs=60 --lr_decay_epochs=40 --save_dir=$(@D) > $(@D).log 2>&1

compare-dtypes: $(DTYPE_RUNS)
	$(PY) -m tools.compare_dtypes results/dtypes

# What `make demo` reaches over seeds and CPU kernels (docs/demo.md), one OpenMP thread per
# run (`make -j2 demo-range` runs two at a time): every seed of DEMO_RANGE_SEEDS with oneDNN's
# own choice, AVX-512 (on a CPU that has it), and with its AVX2 kernels (DNNL_MAX_CPU_ISA=AVX2, the
# kernels of a CPU without AVX-512). A finished run in results/demo-range is kept.
DEMO_RANGE_SEEDS ?= 0 1 2
DEMO_RANGE_KERNELS ?= $(if $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo y),avx512 avx2,avx2)
DEMO_RANGE_RUNS := $(foreach k,$(DEMO_RANGE_KERNELS),$(foreach s,$(DEMO_RANGE_SEEDS),results/demo-range/$(k)-t1-s$(s)/results.json))
isa_avx2 = AVX2

results/demo-range/%/results.json: NUM_THREADS = 1
results/demo-range/%/results.json: | $(DEMO_DIR)/train.txt
	rm -rf $(@D) && mkdir -p results/demo-range
	$(if $(isa_$(word 1,$(subst -, ,$*))),DNNL_MAX_CPU_ISA=$(isa_$(word 1,$(subst -, ,$*)))) $(DEMO_TRAIN) --n_inner_pts=2 --progress=False \
		--seed=$(subst s,,$(word 3,$(subst -, ,$*))) --save_dir=$(@D) > $(@D).log 2>&1

demo-range: $(DEMO_RANGE_RUNS)
	$(PY) -m tools.demo_range results/demo-range

# The demo table (experiments/tables/demo.json: EE n = 2 and n = 0, 60 epochs) over seeds under the
# release's protocol (test-selected) and the validation-selected one, NUM_THREADS runs at a time of
# one thread each; a finished run is kept, an interrupted one continues. The report (Markdown, CSV,
# the R@1 curves) goes to results/experiments/demo/ (docs/protocol.md).
REPRODUCE_SEEDS ?= 0,1,2
REPRODUCE_PROTOCOLS ?= release,val
reproduce-demo: venv | $(DEMO_DIR)/train.txt
	OMP_NUM_THREADS=1 $(PY) -m tools.experiments run demo --seeds $(REPRODUCE_SEEDS) \
		--protocol $(REPRODUCE_PROTOCOLS) --jobs $(NUM_THREADS)
	$(PY) -m tools.experiments report demo --seeds $(REPRODUCE_SEEDS) --protocol $(REPRODUCE_PROTOCOLS)

test: venv
	$(PY) -m pytest -q tests

# The distributed tests run in `make test`; this repeats them (STRESS_RUNS times) and counts passes.
STRESS_RUNS ?= 50
stress-dist: venv
	$(PY) -m tools.stress_dist -n $(STRESS_RUNS)

bench: venv
	OMP_NUM_THREADS=$(NUM_THREADS) $(PY) bench/bench_loss.py
	$(PY) bench/bench_data.py
	OMP_NUM_THREADS=$(NUM_THREADS) $(PY) bench/bench_train_step.py

clean-demo:
	rm -rf $(DEMO_DIR) $(DEMO_SAVE)
