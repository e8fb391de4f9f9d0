#!/usr/bin/env bash
# Benchmark: `exdep run` against three peers doing the same job on the same synthetic files:
# bench/duckdb_job.py with exdep's checks, and lean (no checks, as a data team writes it
# first), and bench/polars_job.py, the lean job with Polars' lazy API. Not a test: it
# measures, and prints a markdown table; every run's raw figures go to a runs file.
#
# Usage: bench/run.sh [SIZES...]        total records per data set (default: 20000000 100000000)
#
# Environment:
#   BENCH_FORMATS   input formats, "parquet csv" by default
#   BENCH_CSV_ALL   1 = CSV at every size (by default CSV only for sizes up to 20M)
#   BENCH_RUNS      runs of each tool per data set (default 3); the median time is reported
#   BENCH_DIR       data, outputs, logs and results.md (default /var/tmp/exdep-bench)
#   BENCH_THREADS   if set, the peers' --threads (DuckDB's and Polars' worker threads)
#   BENCH_PRODUCT_MARGINS  1 = also run exdep with `product-margins = true` (tool
#                   exdep-products) after exdep, and the lean DuckDB script with
#                   product_margins (tool lean-products) after lean, in each round, and
#                   print what product margins cost each
#   EXDEP           the exdep binary (default ${CARGO_TARGET_DIR:-/var/tmp/exdep-target}/release/exdep)
#   EXDEP_ARGS      extra arguments of `exdep run` (split on spaces)
#   PYTHON          Python with the duckdb and polars packages (default python3)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CONFIGS="$REPO/configs"

SIZES=("$@")
if [ ${#SIZES[@]} -eq 0 ]; then
    SIZES=(20000000 100000000)
fi
read -r -a FORMATS <<< "${BENCH_FORMATS:-parquet csv}"
CSV_ALL=${BENCH_CSV_ALL:-0}
RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/exdep-bench}
EXDEP=${EXDEP:-${CARGO_TARGET_DIR:-/var/tmp/exdep-target}/release/exdep}
read -r -a EXTRA <<< "${EXDEP_ARGS:-}"
PYTHON=${PYTHON:-python3}
FROM=2017
TO=2022
YEARS=2017,2018,2019,2020,2021,2022
NYEARS=$((TO - FROM + 1))

for size in "${SIZES[@]}"; do
    if ! [[ $size =~ ^[1-9][0-9]*$ ]] || [ "$size" -lt "$NYEARS" ]; then
        echo "run.sh: a size is a number of records, at least $NYEARS; got '$size'" >&2
        exit 2
    fi
done
for fmt in "${FORMATS[@]}"; do
    case $fmt in
        parquet | csv) ;;
        *) echo "run.sh: BENCH_FORMATS may hold parquet and csv; got '$fmt'" >&2; exit 2 ;;
    esac
done
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: BENCH_RUNS must be a positive number; got '$RUNS'" >&2
    exit 2
fi
if [ ! -x "$EXDEP" ]; then
    echo "run.sh: no exdep binary at $EXDEP; build it first:" >&2
    echo "    cargo build --release -p exdep" >&2
    echo "(or point EXDEP at the binary)" >&2
    exit 2
fi
for package in duckdb polars; do
    if ! "$PYTHON" -c "import $package" 2> /dev/null; then
        echo "run.sh: $PYTHON has no $package package; install it: $PYTHON -m pip install $package" >&2
        exit 2
    fi
done

mkdir -p "$BENCH_DIR/logs"
STAMP=$(date +%Y%m%d-%H%M%S)
TSV="$BENCH_DIR/runs-$STAMP.tsv"
: > "$TSV"
# The tools, in the order each run takes them; each writes its tables to out-TOOL.
TOOLS=(exdep duckdb lean polars)
PRODUCTS=${BENCH_PRODUCT_MARGINS:-0}
WH_EXDEP="$BENCH_DIR/wh-exdep"
THREAD_ARGS=()
if [ -n "${BENCH_THREADS:-}" ]; then
    THREAD_ARGS=(--threads "$BENCH_THREADS")
fi

clean_outputs() {
    local tool
    for tool in "${TOOLS[@]}"; do
        rm -rf "${BENCH_DIR:?}/out-$tool"
    done
    rm -rf "$WH_EXDEP" "$BENCH_DIR/out-exdep-products" "$BENCH_DIR/out-lean-products"
}

# Generates (or reuses) the data set of SIZE records in FORMAT into DATA.
data_set() {
    local size=$1 fmt=$2
    DATA="$BENCH_DIR/data-$size-$fmt"
    local files=("$DATA"/*."$fmt")
    if [ -d "$DATA" ] && [ -e "${files[0]}" ] && [ ${#files[@]} -eq "$NYEARS" ]; then
        echo "reusing $DATA" >&2
    else
        echo "generating $size records ($fmt) into $DATA" >&2
        rm -rf "$DATA"
        "$EXDEP" generate --out "$DATA" --records-per-year $((size / NYEARS)) \
            --from "$FROM" --to "$TO" --format "$fmt" > "$BENCH_DIR/logs/generate-$size-$fmt.log"
    fi
}

# Runs one measured command; appends "size fmt tool seconds rss" to the runs file.
measure() {
    local size=$1 fmt=$2 tool=$3 run=$4
    shift 4
    local log="$BENCH_DIR/logs/$STAMP-$size-$fmt-$tool-$run.log"
    local json
    if ! json=$("$PYTHON" "$HERE/measure.py" --log "$log" "$@"); then
        echo "run.sh: $tool failed on $size records ($fmt); its log, $log, ends:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    local fields seconds rss
    fields=$("$PYTHON" -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["seconds"], d["max_rss_mib"])' "$json")
    read -r seconds rss <<< "$fields"
    printf '%s\t%s\t%s\t%s\t%s\n' "$size" "$fmt" "$tool" "$seconds" "$rss" >> "$TSV"
    printf '  %-6s run %d: %8.2f s, %7.0f MiB\n' "$tool" "$run" "$seconds" "$rss" >&2
}

# measure's arguments, run from nothing: every tool's tables and exdep's warehouse are
# removed first. After the tool's last run, ROWS[tool] keeps its tables' row counts.
declare -A ROWS
run_tool() {
    local tool=$3 run=$4
    clean_outputs
    measure "$@"
    if [ "$run" -eq "$RUNS" ]; then
        ROWS[$tool]=$("$PYTHON" "$HERE/report.py" count "$BENCH_DIR/out-$tool")
    fi
}

for size in "${SIZES[@]}"; do
    for fmt in "${FORMATS[@]}"; do
        if [ "$fmt" = csv ] && [ "$size" -gt 20000000 ] && [ "$CSV_ALL" != 1 ]; then
            echo "skipping CSV at $size records (BENCH_CSV_ALL=1 to include it)" >&2
            continue
        fi
        data_set "$size" "$fmt"
        data=$DATA
        config="$BENCH_DIR/exdep-$size-$fmt.toml"
        cat > "$config" << EOF
# Written by bench/run.sh.
years = [2017, 2018, 2019, 2020, 2021, 2022]
output = "$BENCH_DIR/out-exdep"
warehouse = "$WH_EXDEP"

[[inputs]]
location = "$data/*.$fmt"
format = "canonical-$fmt"

[tables]
hs-chapters = "$CONFIGS/hs_chapters.csv"
partner-regions = "$CONFIGS/partner_regions.csv"
provinces = "$CONFIGS/provinces.csv"
exchange-rates = "$CONFIGS/cny_per_usd.csv"

[indices]
destination-threshold-cny = 1e11
top-n = 10
EOF
        sed -e 's|^output = .*|output = "'"$BENCH_DIR"'/out-exdep-products"|' \
            -e 's|^top-n = 10$|top-n = 10\nproduct-margins = true|' "$config" \
            > "${config%.toml}-products.toml"
        inputs=("$data"/*."$fmt")
        # The peers' settings, the same as exdep's config.
        peer_args=(--configs "$CONFIGS" --years "$YEARS" --base-year "$FROM" --top-n 10
            --threshold-cny 1e11 --destination-level country ${THREAD_ARGS[@]+"${THREAD_ARGS[@]}"})
        echo "$size records, $fmt: $RUNS run(s) of each tool" >&2
        for run in $(seq 1 "$RUNS"); do
            run_tool "$size" "$fmt" exdep "$run" \
                "$EXDEP" run --config "$config" --quiet ${EXTRA[@]+"${EXTRA[@]}"}
            if [ "$PRODUCTS" = 1 ]; then
                run_tool "$size" "$fmt" exdep-products "$run" "$EXDEP" run \
                    --config "${config%.toml}-products.toml" --quiet ${EXTRA[@]+"${EXTRA[@]}"}
            fi
            run_tool "$size" "$fmt" duckdb "$run" "$PYTHON" "$HERE/duckdb_job.py" \
                "${peer_args[@]}" --output "$BENCH_DIR/out-duckdb" "${inputs[@]}"
            run_tool "$size" "$fmt" lean "$run" "$PYTHON" "$HERE/duckdb_job.py" --lean \
                "${peer_args[@]}" --output "$BENCH_DIR/out-lean" "${inputs[@]}"
            if [ "$PRODUCTS" = 1 ]; then
                run_tool "$size" "$fmt" lean-products "$run" "$PYTHON" "$HERE/duckdb_job.py" \
                    --lean --product-margins nation "${peer_args[@]}" \
                    --output "$BENCH_DIR/out-lean-products" "${inputs[@]}"
            fi
            run_tool "$size" "$fmt" polars "$run" "$PYTHON" "$HERE/polars_job.py" \
                "${peer_args[@]}" --output "$BENCH_DIR/out-polars" "${inputs[@]}"
        done
        pairs=()
        for tool in "${TOOLS[@]:1}"; do  # the peers
            pairs+=("exdep $tool")
        done
        if [ "$PRODUCTS" = 1 ]; then
            pairs+=("exdep-products lean-products")
        fi
        for pair in "${pairs[@]}"; do
            read -r mine theirs <<< "$pair"
            if [ "${ROWS[$theirs]}" != "${ROWS[$mine]}" ]; then
                echo "run.sh: WARNING: $theirs wrote other row counts than $mine:" >&2
                printf '  %-14s %s\n' "$mine" "${ROWS[$mine]}" "$theirs" "${ROWS[$theirs]}" >&2
            fi
        done
        clean_outputs
    done
done

header="| input | exdep | lean DuckDB | DuckDB with checks | Polars lean | exdep / lean DuckDB | exdep / DuckDB with checks | exdep / Polars lean |"
rule="|---|---|---|---|---|---|---|---|"
lines=$("$PYTHON" "$HERE/report.py" summary "$TSV")
scaling=""
if [[ " ${SIZES[*]} " == *" 20000000 "* && " ${SIZES[*]} " == *" 100000000 "* ]]; then
    scaling=$("$PYTHON" "$HERE/report.py" scaling "$TSV" 20000000 100000000)
fi

products=""
if [ "$PRODUCTS" = 1 ]; then
    products=$("$PYTHON" "$HERE/report.py" products "$TSV")
fi

table() {
    echo
    echo "$header"
    echo "$rule"
    echo "$lines"
    if [ -n "$scaling" ]; then
        echo
        echo "$scaling"
    fi
    if [ -n "$products" ]; then
        echo
        echo "| input | exdep | exdep with product-margins | with / without | lean DuckDB | lean DuckDB with product_margins | with / without |"
        echo "|---|---|---|---|---|---|---|"
        echo "$products"
    fi
}
table
{
    echo
    echo "## $STAMP: $(nproc) cores, $RUNS run(s) each, median time, peak RSS"
    table
} >> "$BENCH_DIR/results.md"
echo
echo "appended to $BENCH_DIR/results.md (runs: $TSV)"
