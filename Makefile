# RIDE (spatial LSTM + MCGSM) — build, test, data and evaluation entry points.
#
#   make reproduce        every paper experiment at the paper's scale -> results/, REPORT.md
#                         (finished rows are committed and reused; missing ones train: days)
#   make reproduce SCALE=standard   reduced sizes (hours) -> results/standard/
#   make reproduce-quick  every experiment at a smoke-test size (minutes) -> results/quick/
#   make test             the test suite (release build; committed fixtures only, no data needed;
#                         changes nothing on the machine)
#   make test-data        the tests that need the full data sets (DATA_DIR or ../shared/data)
#   make test-slurm       the real-Slurm sweep test: installs slurm-wlm + munge if needed (root)
#   make codec            the RIDE codec against PNG, WebP and JPEG XL -> results/codec/
#   make campaign         the paper-scale runs still to do, in the background at the lowest
#                         priority (resumable; logs in /tmp/ride-campaign)

CARGO      ?= cargo
SHARED     ?= ../shared
SHARED_DATA = $(SHARED)/data
DATA_DIR   ?= $(or $(RIDE_DATA_DIR),data)
MODEL      ?= $(SHARED)/models/ride1_bsds300.npz
SCALE      ?= paper
WORKERS    ?= 1
# results root of make reproduce (default: results for paper, results/<scale> otherwise)
OUT        ?=
RIDE        = ./target/release/ride
DATASETS    = bsds300 vanhateren brodatz

.DEFAULT_GOAL := build
.PHONY: campaign campaign-stop data data-link build test test-data test-slurm fixtures eval-fixture reproduce reproduce-quick report bench bench-peers codec codec-tools compare-outputs bsds300-side-by-side bsds300-eoride deadleaves-quick fmt clippy clean

# Link the data sets from $(SHARED_DATA) into $(DATA_DIR) when that mirror exists (an existing
# real directory of the same name is left alone); otherwise download them from the official
# hosts (or MIRROR=URL, also RIDE_DATA_MIRROR) with `ride data fetch`: resumable, every file
# checked against the SHA-256 sums built into ride (src/data/fetch/sums/).
data:
	@set -e; \
	if [ -d "$(SHARED_DATA)" ]; then \
	  mkdir -p "$(DATA_DIR)"; \
	  for d in $(DATASETS); do \
	    if [ -e "$(DATA_DIR)/$$d" ] && [ ! -L "$(DATA_DIR)/$$d" ]; then \
	      echo "$(DATA_DIR)/$$d: present (not a link), left alone"; \
	    elif [ -d "$(SHARED_DATA)/$$d" ]; then \
	      target=$$(realpath --relative-to="$(DATA_DIR)" "$(SHARED_DATA)/$$d"); \
	      ln -sfn "$$target" "$(DATA_DIR)/$$d"; \
	      echo "$(DATA_DIR)/$$d -> $$target"; \
	    else \
	      echo "warning: $(SHARED_DATA)/$$d not found" >&2; \
	    fi; \
	  done; \
	else \
	  $(MAKE) --no-print-directory build; \
	  $(RIDE) --data-dir "$(DATA_DIR)" data fetch $(if $(MIRROR),--mirror $(MIRROR)); \
	fi

# Links $(SHARED_DATA) into $(DATA_DIR) when it exists; never downloads.
data-link:
	@if [ -d "$(SHARED_DATA)" ]; then $(MAKE) --no-print-directory data; else echo "no $(SHARED_DATA): using $(DATA_DIR) as it is (make data downloads the data sets)"; fi

build:
	$(CARGO) build --release

# Release build so the numerical tests run fast. Only the committed fixtures (tests/fixtures/)
# are read, so this passes on a clean clone anywhere; includes a bounded property/fuzz suite
# (tests/fuzz.rs) and a loopback-HTTP test of the data fetcher. Never installs or starts anything.
test:
	$(CARGO) test --release

# The tests that need the whole data sets (BSDS300 with its gray test PNGs, van Hateren,
# Brodatz, and ../shared/models/ride1_bsds300_fixture.npz): the 3.7981 bit/px score on all 100
# test images, the quick reproduction of every experiment, every JPEG through the strict
# decoder. Data from RIDE_DATA_DIR, ../shared/data or data/ (`make data`).
test-data:
	@test -d "$(SHARED)/models" || { echo "make test-data needs $(SHARED)/models (the original code's full fixture) and the data sets (make data)" >&2; exit 1; }
	RIDE_DATA_DIR="$(abspath $(DATA_DIR))" $(CARGO) test --release -- --ignored --skip sweep_runs_through_a_real_slurm --skip reproduce_dag_runs_through_a_real_slurm --skip keep_examples_when_asked --skip make_fixtures

# Regenerates tests/fixtures/ from ../shared (the committed crops, the tile-sized model fixture).
fixtures:
	$(CARGO) test --release --test make_fixtures -- --ignored

# A real single-node Slurm (tests/slurm/start_slurm.sh: apt-get slurm-wlm + munge if missing,
# starts munge, slurmctld, slurmd; needs root), then the sweep test that submits to it.
test-slurm:
	bash tests/slurm/start_slurm.sh
	$(CARGO) test --release --test slurm -- --ignored

# Score the original code's trained 1-layer BSDS300 model on the 100 test images (bit/px).
eval-fixture: data build
	$(RIDE) --data-dir $(DATA_DIR) eval --model $(MODEL) $(DATA_DIR)/bsds300/gray/test

# The paper's tables, ablation sweeps, textures and inpainting from experiments/reproduce.toml:
# CSV tables, figures (PNG + SVG) and REPORT.md. Finished rows and sweep cells are kept, so an
# interrupted run continues where it stopped when restarted.
reproduce: data build
	$(RIDE) --data-dir $(DATA_DIR) reproduce --scale $(SCALE) --workers $(WORKERS) $(if $(OUT),--out $(OUT))

# Runs on a clean clone: experiments whose data is not in DATA_DIR are skipped and named.
reproduce-quick: data-link build
	$(RIDE) --data-dir $(DATA_DIR) reproduce --scale quick

# The paper-scale campaign in the background, for a machine of 2 cores shared with other work:
# two chains that run side by side, each in its own scheduler group at nice 19 (jobs under
# setsid get a group of their own, and plain `nice` ranks threads only inside a group), from a
# copy of the binary so that rebuilding does not touch it. Both go through every experiment
# still to run, in different orders: a table, or a sweep cell, that the other chain is running
# (it holds its lock, src/io/run_lock.rs) is skipped, so neither waits while work is left and
# no two train the same thing. Finished rows and cells are reused and killed ones resume from
# their checkpoints: run it again after an interruption. Refuses to start while a campaign
# runs (`make campaign-stop` stops it). Logs: CAMPAIGN_LOGS/{A,B}.log.
CAMPAIGN_A     ?= deadleaves bsds300_patches textures sweep_vh_nb_size sweep_nb_size sweep_nb_size_mcgsm sweep_layers sweep_hiddens sweep_components
CAMPAIGN_B     ?= sweep_vh_nb_size textures bsds300_patches deadleaves sweep_components sweep_hiddens sweep_layers sweep_nb_size_mcgsm sweep_nb_size
CAMPAIGN_LOGS  ?= /tmp/ride-campaign
# extra `ride reproduce` flags (e.g. --scale quick --out DIR to try it)
CAMPAIGN_FLAGS ?=
CAMPAIGN_BIN    = $(abspath target/campaign/ride)
campaign: data-link build
	@if pgrep -f "^$(CAMPAIGN_BIN) " > /dev/null; then echo "a campaign is running ($(CAMPAIGN_BIN)); not starting another" >&2; exit 1; fi
	@mkdir -p "$(CAMPAIGN_LOGS)" target/campaign
	@cp $(RIDE) $(CAMPAIGN_BIN).new && mv -f $(CAMPAIGN_BIN).new $(CAMPAIGN_BIN)
	@for chain in A B; do \
	  if [ $$chain = A ]; then list="$(CAMPAIGN_A)"; else list="$(CAMPAIGN_B)"; fi; \
	  log="$(CAMPAIGN_LOGS)/$$chain.log"; \
	  setsid nohup sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; \
	    for e in '"$$list"'; do \
	      echo "=== $$(date -u) start $$e"; \
	      nice -n 19 $(CAMPAIGN_BIN) --data-dir "$(DATA_DIR)" reproduce --only $$e $(CAMPAIGN_FLAGS); \
	      echo "=== $$(date -u) end $$e (exit status $$?)"; \
	    done' >> "$$log" 2>&1 < /dev/null & \
	  echo "campaign chain $$chain: $$list (log: $$log)"; \
	done

# Stops both chains (the chain scripts first, so that none starts its next experiment); what
# they were training resumes from its checkpoint at the next `make campaign`.
campaign-stop:
	@pkill -f "^sh -c echo 19 > /proc/self/autogroup" || true
	@if pkill -f "^$(CAMPAIGN_BIN) "; then echo "campaign stopped"; else echo "no campaign was running"; fi

# Rewrite REPORT.md from the results already there.
report: build
	$(RIDE) --data-dir $(DATA_DIR) reproduce --scale $(SCALE) --report-only $(if $(OUT),--out $(OUT))

# Our 1-layer BSDS300 model (experiments/bsds300_ride1.toml) and the original code's model,
# scored by the same `ride eval` on the 100 BSDS300 test images (one JSON line each).
bsds300-side-by-side: data build
	@mkdir -p results/bsds300_ride1
	{ $(RIDE) --data-dir $(DATA_DIR) eval --json --model results/models/ride1_bsds300.safetensors $(DATA_DIR)/bsds300/gray/test | tail -n 1; \
	  $(RIDE) --data-dir $(DATA_DIR) eval --json --model $(MODEL) $(DATA_DIR)/bsds300/gray/test | tail -n 1; } > results/bsds300_ride1/side_by_side.jsonl.tmp
	mv results/bsds300_ride1/side_by_side.jsonl.tmp results/bsds300_ride1/side_by_side.jsonl
	@cat results/bsds300_ride1/side_by_side.jsonl

# EoRIDE (8 flips/transposes, log-mean-exp per tile, pixels every transform predicts) of the
# same two models; each line also carries the single-model score over those pixels.
bsds300-eoride: data build
	@mkdir -p results/bsds300_ride1
	{ $(RIDE) --data-dir $(DATA_DIR) eval --ensemble --json --model results/models/ride1_bsds300.safetensors $(DATA_DIR)/bsds300/gray/test | tail -n 1; \
	  $(RIDE) --data-dir $(DATA_DIR) eval --ensemble --json --model $(MODEL) $(DATA_DIR)/bsds300/gray/test | tail -n 1; } > results/bsds300_ride1/eoride.jsonl.tmp
	mv results/bsds300_ride1/eoride.jsonl.tmp results/bsds300_ride1/eoride.jsonl
	@cat results/bsds300_ride1/eoride.jsonl

# The quick dead-leaves check of issue 3: RIDE and its MCGSM baseline on the same images
# (each run's summary.json, train_log.csv under results/deadleaves_quick*/).
deadleaves-quick: build
	$(RIDE) train --config experiments/deadleaves_quick.toml --out results/deadleaves_quick
	$(RIDE) train --config experiments/deadleaves_quick_mcgsm.toml --out results/deadleaves_quick_mcgsm

# Criterion benchmarks, then the roofline (FMA peak, every kernel at 1 and 2 threads, GFLOP/s,
# share of peak, paper-scale projection) written to results/bench/roofline.{csv,json}.
bench: build
	$(CARGO) bench --bench recurrence
	$(RIDE) bench --harvest target/criterion --out results/bench
	$(RIDE) bench --threads 1,2 --out results/bench

# ride against a JAX peer of the same SLSTM layer and training step (benches/peers/), interleaved
# in one run, best of $(PEER_ROUNDS) rounds each -> results/bench/peers.csv. Creates its own
# virtual environment ($(PEERS_VENV)) with pip on first use.
PEERS_VENV  ?= target/peers-venv
PEER_ROUNDS ?= 3
bench-peers: build
	@test -x $(PEERS_VENV)/bin/python || python3 -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q -r benches/peers/requirements.txt
	cd benches/peers && ../../$(PEERS_VENV)/bin/python ride_jax.py
	cd benches/peers && ../../$(PEERS_VENV)/bin/python run_peers.py --ride ../../$(RIDE) \
	  --rounds $(PEER_ROUNDS) --out ../../results/bench/peers.csv --commit $$(git describe --always --dirty)

# The standard codecs `make codec` compares with (Debian packages; needs root or sudo).
codec-tools:
	@command -v cwebp >/dev/null && command -v cjxl >/dev/null && command -v optipng >/dev/null || \
	  { apt-get install -y webp libjxl-tools optipng || sudo apt-get install -y webp libjxl-tools optipng; }

# The RIDE codec (the paper-scale BSDS300 models) against PNG (optipng -o7), WebP lossless
# (cwebp -z 9) and JPEG XL lossless (cjxl -e 9) on the BSDS300 test images and Brodatz plates
# (experiments/codec.toml): every file decoded again and checked; bit/px ± SEM, encode and
# decode px/s, figures -> results/codec/. Finished images are kept: a rerun resumes.
# LIMIT=N codes only the first N images of each data set.
codec: data build codec-tools
	$(RIDE) --data-dir $(DATA_DIR) codec-compare --config experiments/codec.toml --out results/codec $(if $(LIMIT),--limit $(LIMIT))

# Compares two output trees of `ride reproduce` (say before and after a refactor, run with
# --out A and --out B): model tensors byte for byte, CSV and JSON values with timings, commits
# and the output folder's own path left out, figures and everything else byte for byte.
compare-outputs:
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare-outputs A=DIR B=DIR" >&2; exit 2; }
	python3 tests/compare_outputs.py $(A) $(B)

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
