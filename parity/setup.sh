#!/usr/bin/env bash
# One idempotent set-up of R, reticulate >= 1.41, rpy2 3.5.x and TensorFlow on Debian 12 (see README.md).
#
#   bash parity/setup.sh                 # everything, CPU TensorFlow, venv in ./.venv
#   VENV=/opt/tp GPU=1 bash parity/setup.sh
#
# Environment: VENV (virtual environment, default <root>/.venv), PYTHON (the interpreter that makes it,
# default python3; it must have a shared libpython for reticulate), R_LIB (project R library, default
# <root>/.rlib), GPU=1 (tensorflow[and-cuda] instead of tensorflow-cpu), CRAN_REPO (tried first for reticulate).
# A step that cannot run here stops with the exact command to run instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
R_LIB="${R_LIB:-$ROOT/.rlib}"
GPU="${GPU:-0}"
CRAN_REPO="${CRAN_REPO:-https://cloud.r-project.org}"
RETICULATE_MIN="1.41"
# Debian packages of R and of the R packages the R side uses (DESCRIPTION lists the same).
R_DEBS=(r-base-core r-base-dev r-cran-codetools r-cran-jsonlite r-cran-png r-cran-jpeg r-cran-terra r-cran-testthat
        r-cran-rcpp r-cran-rcpptoml r-cran-here r-cran-rappdirs r-cran-rlang r-cran-withr r-cran-matrix)
# rasterio's wheels bundle GDAL; these are for R's terra (pulled in by r-cran-terra) and for building rpy2.
BUILD_DEBS=(build-essential xz-utils)

t0=$(date +%s)
step() { printf '\n== %s\n' "$*"; }
die() { printf '\nsetup: %s\n' "$*" >&2; exit 1; }

step "R and the Debian R packages"
missing=()
for p in "${R_DEBS[@]}" "${BUILD_DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "apt-get not found: install R >= 4.2 and these R packages yourself: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    die "needs root to install ${missing[*]}. Run:
  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}
then run this set-up again."
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "present: $(R --version | head -1)"
fi
command -v Rscript >/dev/null || die "Rscript not on PATH after installing R"

step "reticulate >= $RETICULATE_MIN in $R_LIB"
mkdir -p "$R_LIB"
have=$(Rscript -e "cat(tryCatch(as.character(packageVersion('reticulate', lib.loc='$R_LIB')), error=function(e) ''))" 2>/dev/null || true)
if [ -n "$have" ] && Rscript -e "quit(status = as.integer(package_version('$have') < '$RETICULATE_MIN'))" >/dev/null 2>&1; then
  echo "present: reticulate $have"
else
  echo "trying CRAN ($CRAN_REPO)"
  if timeout 120 Rscript -e "options(timeout = 30); install.packages('reticulate', lib = '$R_LIB', repos = '$CRAN_REPO', quiet = TRUE); quit(status = as.integer(!requireNamespace('reticulate', lib.loc = '$R_LIB', quietly = TRUE)))" >/dev/null 2>&1; then
    echo "installed from CRAN"
  else
    echo "CRAN not reachable: building Debian 13's reticulate source (apt lists kept private, system lists untouched)"
    command -v apt-get >/dev/null || die "no CRAN and no apt-get: install reticulate >= $RETICULATE_MIN into $R_LIB by hand (R CMD INSTALL -l $R_LIB reticulate_<version>.tar.gz)"
    # The mirror the system already uses for bookworm also serves trixie's sources.
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if($i ~ /^[a-z]+:\/\//){print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || die "could not read a Debian mirror from /etc/apt/sources.list*: put 'deb-src <mirror> trixie main' in a file and run apt-get -o Dir::Etc::SourceList=<file> source --download-only r-cran-reticulate"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$work/src"
    echo "deb-src [trusted=yes] $uri trixie main" > "$work/sources.list"
    aptopts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$work/lists")
    apt-get "${aptopts[@]}" update -qq >/dev/null 2>&1 || die "apt-get update of the trixie source list failed (network?)"
    # The .dsc answers 404 on some mirrors while the upstream tarball comes: that is enough to build.
    (cd "$work/src" && apt-get "${aptopts[@]}" source --download-only r-cran-reticulate >/dev/null 2>&1 || true)
    tarball=$(ls "$work"/src/r-cran-reticulate_*.orig.tar.* 2>/dev/null | head -1)
    [ -n "$tarball" ] || die "could not download r-cran-reticulate's source from trixie"
    (cd "$work/src" && tar xf "$tarball")
    R CMD INSTALL --no-test-load -l "$R_LIB" "$work/src/reticulate" >"$work/install.log" 2>&1 \
      || { tail -20 "$work/install.log" >&2; die "building reticulate failed (log above)"; }
    echo "built: reticulate $(Rscript -e "cat(as.character(packageVersion('reticulate', lib.loc='$R_LIB')))")"
  fi
fi

step "Python virtual environment $VENV"
command -v "$PYTHON" >/dev/null || die "no Python interpreter '$PYTHON': install python3 (>= 3.10, with a shared libpython) or set PYTHON="
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || die "could not make a venv with $PYTHON: apt-get install python3-venv, then run again"
fi
extra="cpu"; [ "$GPU" = 1 ] && extra="gpu"
# Re-install only when the declared dependencies or this script changed.
stamp="$VENV/.tailings-parity-stamp"
want="$extra $(cat "$ROOT/pyproject.toml" "$ROOT/parity/setup.sh" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "up to date ($want)"
else
  log="$VENV/pip-install.log"
  "$VENV/bin/python" -m pip install -q --upgrade pip >"$log" 2>&1 || true
  echo "pip install -e .[$extra,test] (log: $log)"
  # rpy2 builds against the R found on PATH (R_HOME); 3.6 does not load on R 4.2 (README, "Versions").
  R_HOME="$(R RHOME)" "$VENV/bin/python" -m pip install -q -e "$ROOT[$extra,test]" >>"$log" 2>&1 \
    || { grep -v "^WARNING: Location" "$log" | tail -30 >&2; die "pip install failed (log above: $log)"; }
  echo "$want" > "$stamp"
fi

step "files that point R at this set-up"
# R started in the project folder (R, Rscript, RStudio) reads .Renviron: the project library and Python.
cat > "$ROOT/.Renviron" <<RENV
# \${VAR-default}: a value already set in the environment wins.
R_LIBS=\${R_LIBS-$R_LIB}
RETICULATE_PYTHON=\${RETICULATE_PYTHON-$VENV/bin/python}
RENV
echo "wrote $ROOT/.Renviron"
echo
echo "set-up done in $(( $(date +%s) - t0 )) s"
