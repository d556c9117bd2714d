#!/usr/bin/env bash
# Ferry tool bootstrap: installs the external tools that the devnet and the
# integration tests need into the git-ignored, project-local .tools/ directory.
#
#   bash deploy/setup.sh            (the Makefile's `setup` target runs this)
#   export PATH="$PWD/.tools/bin:$PATH"
#
# Tools and where they come from (nothing is downloaded from a website):
#   cometbft, abci-cli       Go module proxy   (abci-cli serves the kvstore benchmark baseline)
#   btcd, btcctl             Go module proxy   (go install, GOBIN=.tools/bin)
#   anvil, solcjs            npm registry      (npm install --prefix .tools/npm)
#   @cosmjs/stargate,        npm registry      (libraries, no binary: the cosmjs wallet test
#   @cosmjs/proto-signing                       loads them from .tools/npm/node_modules)
#   initdb, pg_ctl, postgres Debian package    postgresql (apt-get, if missing)
#   prometheus, promtool     Debian package    prometheus (apt-get, if missing)
# Everything ends up as a binary or symlink in .tools/bin.
#
# Idempotent: pins live in deploy/versions.env; each tool has a stamp file
# .tools/stamps/<tool> holding the version that was installed. A tool is
# (re)installed only when one of its binaries is missing or its stamp differs
# from the pin, so the warm path makes no network calls and runs no installer.
# Binaries that are already present without a stamp (e.g. from a manual
# `go install`) are adopted when they report the pinned version.
# To force a reinstall of one tool: rm .tools/stamps/<tool>.
# Installer output goes to .tools/logs/<tool>.log.
set -Eeuo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
STAMPS="$TOOLS/stamps"
LOGS="$TOOLS/logs"
NPM_PREFIX="$TOOLS/npm"

# shellcheck source=deploy/versions.env
. "$ROOT/deploy/versions.env"

CURRENT="setup"   # the tool being handled, named in error messages
APT_UPDATED=""
SUDO=()

say() { printf 'setup: %s\n' "$*"; }

fail() {
  printf 'setup: %s FAILED: %s\n' "$CURRENT" "$*" >&2
  exit 1
}

on_err() {
  local rc=$1 line=$2
  printf 'setup: %s FAILED: unexpected error (exit %s) at deploy/setup.sh line %s\n' \
    "$CURRENT" "$rc" "$line" >&2
  exit "$rc"
}
trap 'on_err $? $LINENO' ERR

for var in COMETBFT_VERSION BTCD_VERSION ANVIL_VERSION SOLC_VERSION COSMJS_VERSION; do
  [[ -n ${!var:-} ]] || fail "$var is not set in deploy/versions.env"
done

# --- helpers ------------------------------------------------------------------

# run_logged TOOL CMD...: run CMD, appending its output to .tools/logs/TOOL.log;
# on failure show the end of the log and fail.
run_logged() {
  local log="$LOGS/$1.log"
  shift
  printf '+ %s\n' "$*" >>"$log"
  if ! "$@" >>"$log" 2>&1; then
    tail -n 25 "$log" | sed 's/^/setup:   | /' >&2
    fail "'$*' failed (full log: ${log#"$ROOT"/})"
  fi
}

# stamp_is TOOL VERSION: the stamp of TOOL records VERSION.
stamp_is() {
  local f="$STAMPS/$1" v=""
  if [[ -f $f ]]; then read -r v <"$f" || true; fi
  [[ $v == "$2" ]]
}

write_stamp() {
  printf '%s\n' "$2" >"$STAMPS/$1.tmp"
  mv -f "$STAMPS/$1.tmp" "$STAMPS/$1"
}

# have_bins NAME...: every NAME is an executable file in .tools/bin
# (symlinks are followed, so a dangling link counts as missing).
have_bins() {
  local b
  for b in "$@"; do
    [[ -f $BIN/$b && -x $BIN/$b ]] || return 1
  done
}

# link_bin NAME TARGET: make .tools/bin/NAME a symlink to TARGET (relative
# when TARGET lies inside .tools, so the tree survives moving the checkout).
link_bin() {
  local name=$1 target=$2
  if [[ $target == "$TOOLS"/* ]]; then
    target=$(realpath -m --relative-to="$BIN" "$target")
  fi
  ln -sfn "$target" "$BIN/$name"
}

# find_in_path NAME: print the resolved path of NAME found in PATH, skipping
# .tools/bin itself (whose entries are our own symlinks).
find_in_path() {
  local name=$1 dir
  local -a dirs
  IFS=: read -r -a dirs <<<"$PATH"
  for dir in "${dirs[@]}"; do
    [[ -n $dir && -d $dir ]] || continue
    [[ $dir -ef $BIN ]] && continue
    if [[ -f $dir/$name && -x $dir/$name ]]; then
      readlink -f -- "$dir/$name"
      return 0
    fi
  done
  return 1
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || fail "'$1' not found in PATH ($2)"
}

# apt_install PKG...: apt-get install, as root or through sudo.
apt_install() {
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "need root or sudo to apt-get install $*"
    SUDO=(sudo)
  fi
  need_cmd apt-get "Debian's package manager, to install $*"
  if [[ -z $APT_UPDATED ]]; then
    run_logged "$CURRENT" "${SUDO[@]}" apt-get update
    APT_UPDATED=1
  fi
  run_logged "$CURRENT" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 "$@"
}

# ensure TOOL VERSION PROBE INSTALL BIN...
#   Warm path: the stamp matches VERSION and every BIN exists -> nothing to do.
#   Otherwise adopt present binaries if PROBE prints VERSION, else run INSTALL,
#   then check the binaries and the version PROBE reports, and write the stamp.
ensure() {
  local tool=$1 want=$2 probe=$3 install=$4 got=""
  shift 4
  CURRENT=$tool
  if stamp_is "$tool" "$want" && have_bins "$@"; then
    say "$tool $want ok"
    return 0
  fi
  if have_bins "$@"; then
    got=$("$probe" 2>/dev/null) || got=""
    if [[ $got == "$want" ]]; then
      write_stamp "$tool" "$want"
      say "$tool $want ok (existing binaries adopted)"
      return 0
    fi
  fi
  say "$tool $want installing..."
  : >"$LOGS/$tool.log"
  "$install"
  have_bins "$@" || fail "after install, missing in .tools/bin: $*"
  got=$("$probe" 2>>"$LOGS/$tool.log") || got=""
  [[ $got == "$want" ]] ||
    fail "installed binary reports version '${got:-<none>}', expected '$want'"
  write_stamp "$tool" "$want"
  say "$tool $want installed"
}

# --- Go tools (Go module proxy) ----------------------------------------------

# go_main_version BIN: the main module version recorded in a Go binary.
go_main_version() {
  go version -m "$1" | awk '$1 == "mod" { print $3; exit }'
}

probe_cometbft() {
  local v
  v=$("$BIN/cometbft" version)
  printf 'v%s\n' "${v%%[[:space:]]*}"
}

install_cometbft() {
  need_cmd go "needed to go install cometbft"
  run_logged cometbft env GOBIN="$BIN" \
    go install "github.com/cometbft/cometbft/cmd/cometbft@$COMETBFT_VERSION" \
    "github.com/cometbft/cometbft/abci/cmd/abci-cli@$COMETBFT_VERSION"
}

probe_btcd() {
  local out v
  out=$("$BIN/btcd" --version)          # "btcd version 0.26.2-beta"
  v=${out##* }
  v="v${v%%-*}"
  # btcctl's own --version string is stale upstream (prints 0.23.1-beta), so
  # read the module version Go embedded in the binary instead, when go exists.
  if command -v go >/dev/null 2>&1; then
    local c
    c=$(go_main_version "$BIN/btcctl")
    [[ $c == "$v" ]] || v="btcd $v / btcctl $c"
  fi
  printf '%s\n' "$v"
}

install_btcd() {
  need_cmd go "needed to go install btcd"
  run_logged btcd env GOBIN="$BIN" go install \
    "github.com/btcsuite/btcd@$BTCD_VERSION" \
    "github.com/btcsuite/btcd/cmd/btcctl@$BTCD_VERSION"
}

# --- npm tools (npm registry, one shared prefix .tools/npm) ------------------

npm_install() {
  local tool=$1 spec=$2
  need_cmd npm "needed to install $spec from the npm registry"
  mkdir -p "$NPM_PREFIX"
  # --save-exact keeps every pinned package in .tools/npm/package.json, so
  # installing one package never prunes the other.
  run_logged "$tool" npm install --prefix "$NPM_PREFIX" --no-audit --no-fund \
    --no-update-notifier --save-exact "$spec"
}

# pkg_bin PKGDIR NAME: print the path of executable NAME shipped in an npm
# package: the package's node_modules/.bin link if it points into PKGDIR,
# else the first file called NAME inside PKGDIR.
pkg_bin() {
  local pkg=$1 name=$2 link
  link="$NPM_PREFIX/node_modules/.bin/$name"
  if [[ -e $link ]]; then
    link=$(readlink -f -- "$link")
    if [[ $link == "$pkg"/* ]]; then
      printf '%s\n' "$link"
      return 0
    fi
  fi
  find "$pkg" -type f -name "$name" -print -quit
}

ANVIL_PKG="$NPM_PREFIX/node_modules/@foundry-rs/anvil-linux-amd64"

# The binary must run; the version is the npm package's, because the binary's
# own string is not reliable (anvil 1.7.0 from npm says "1.6.0-v1.7.0").
probe_anvil() {
  local out target
  out=$("$BIN/anvil" --version) || return 1   # "anvil Version: 1.7.1" + build info
  [[ $out == *Version:* ]] || return 1
  target=$(readlink -f -- "$BIN/anvil")
  if [[ $target == "$ANVIL_PKG"/* && -f $ANVIL_PKG/package.json ]]; then
    node -p 'require(process.argv[1]).version' "$ANVIL_PKG/package.json"
  else
    out=${out%%$'\n'*}
    printf '%s\n' "${out##* }"
  fi
}

install_anvil() {
  local pkg="$ANVIL_PKG" target
  [[ $(uname -s)/$(uname -m) == Linux/x86_64 ]] ||
    fail "@foundry-rs/anvil-linux-amd64 only runs on Linux x86_64, this is $(uname -s)/$(uname -m)"
  npm_install anvil "@foundry-rs/anvil-linux-amd64@$ANVIL_VERSION"
  target=$(pkg_bin "$pkg" anvil)
  [[ -n $target && -f $target ]] || fail "no anvil binary inside $pkg"
  chmod +x "$target"
  link_bin anvil "$target"
}

probe_solc() {
  local v
  v=$("$BIN/solcjs" --version)          # "0.8.37+commit.f401782d.Emscripten.clang"
  printf '%s\n' "${v%%+*}"
}

install_solc() {
  local pkg="$NPM_PREFIX/node_modules/solc" target
  need_cmd node "solcjs is a node script"
  npm_install solc "solc@$SOLC_VERSION"
  target=$(pkg_bin "$pkg" solc.js)
  [[ -n $target && -f $target ]] || fail "no solc.js inside $pkg"
  link_bin solcjs "$target"
}

# cosmjs ships libraries, not binaries, so there is no link in .tools/bin to
# check: the installed packages' own package.json files are the probe (two
# `node -p` calls on the warm path).
COSMJS_PACKAGES=(@cosmjs/stargate @cosmjs/proto-signing)

probe_cosmjs() {
  local pkg v seen=""
  for pkg in "${COSMJS_PACKAGES[@]}"; do
    v=$(node -p 'require(process.argv[1]).version' "$NPM_PREFIX/node_modules/$pkg/package.json" 2>/dev/null) ||
      return 1
    [[ -z $seen || $seen == "$v" ]] || { printf '%s\n' "$seen/$v"; return 0; }
    seen=$v
  done
  printf '%s\n' "$seen"
}

ensure_cosmjs() {
  local got pkg
  CURRENT=cosmjs
  need_cmd node "the cosmjs wallet test is a node script"
  got=$(probe_cosmjs) || got=""
  if [[ $got == "$COSMJS_VERSION" ]]; then
    say "cosmjs $COSMJS_VERSION ok"
    return 0
  fi
  say "cosmjs $COSMJS_VERSION installing..."
  : >"$LOGS/cosmjs.log"
  for pkg in "${COSMJS_PACKAGES[@]}"; do
    npm_install cosmjs "$pkg@$COSMJS_VERSION"
  done
  got=$(probe_cosmjs) || got=""
  [[ $got == "$COSMJS_VERSION" ]] ||
    fail "installed cosmjs reports version '${got:-<none>}', expected '$COSMJS_VERSION'"
  write_stamp cosmjs "$COSMJS_VERSION"
  say "cosmjs $COSMJS_VERSION installed"
}

# --- Debian packages ----------------------------------------------------------
# Not pinned here (the distribution picks the version); the stamp records the
# version found, and the warm path only checks that the links still resolve.

PG_BINS=(initdb pg_ctl postgres)

# find_pg_dir: print the first directory that holds all of PG_BINS: where
# initdb/pg_ctl resolve from PATH, then /usr/lib/postgresql/*/bin, newest first.
find_pg_dir() {
  local -a cands=()
  local p d b ok
  for b in initdb pg_ctl; do
    if p=$(find_in_path "$b"); then cands+=("${p%/*}"); fi
  done
  if [[ -d /usr/lib/postgresql ]]; then
    while IFS= read -r d; do cands+=("$d"); done < <(
      find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin | sort -t/ -k4,4Vr
    )
  fi
  for d in "${cands[@]}"; do
    ok=1
    for b in "${PG_BINS[@]}"; do
      [[ -f $d/$b && -x $d/$b ]] || { ok=""; break; }
    done
    if [[ -n $ok ]]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

ensure_postgres() {
  local v="" dir b
  CURRENT=postgresql
  if [[ -f $STAMPS/postgresql ]] && have_bins "${PG_BINS[@]}"; then
    read -r v <"$STAMPS/postgresql" || true
    say "postgresql ${v:-?} ok"
    return 0
  fi
  if ! dir=$(find_pg_dir); then
    say "postgresql installing (Debian package postgresql)..."
    : >"$LOGS/postgresql.log"
    apt_install postgresql
    dir=$(find_pg_dir) ||
      fail "initdb, pg_ctl and postgres still not found after apt-get install postgresql"
  fi
  for b in "${PG_BINS[@]}"; do link_bin "$b" "$dir/$b"; done
  v=$("$BIN/pg_ctl" --version) || fail "'pg_ctl --version' failed"
  # "pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  [[ $v =~ \(PostgreSQL\)\ ([^ ]+) ]] || fail "unexpected 'pg_ctl --version' output: $v"
  v=${BASH_REMATCH[1]}
  write_stamp postgresql "$v"
  say "postgresql $v ok (linked from $dir)"
}

# The Debian package's postinst may start a system prometheus (port 9090):
# stop that one service, through the package's own service command. (Where
# policy-rc.d forbids starting services, as in containers, it never starts.)
system_prometheus_running() {
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl is-active --quiet prometheus.service
  elif [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus status >/dev/null 2>&1
  else
    return 1
  fi
}

stop_system_prometheus() {
  system_prometheus_running || return 0
  say "prometheus: stopping the system prometheus service the package started"
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    # also disabled, or it would come back at the next boot
    run_logged prometheus "${SUDO[@]}" systemctl disable --now prometheus.service
  elif command -v service >/dev/null 2>&1; then
    run_logged prometheus "${SUDO[@]}" service prometheus stop
  else
    run_logged prometheus "${SUDO[@]}" /etc/init.d/prometheus stop
  fi
  ! system_prometheus_running ||
    fail "the system prometheus service is still running after stopping it"
}

ensure_prometheus() {
  local v="" p1="" p2=""
  CURRENT=prometheus
  if [[ -f $STAMPS/prometheus ]] && have_bins prometheus promtool; then
    read -r v <"$STAMPS/prometheus" || true
    say "prometheus ${v:-?} ok"
    return 0
  fi
  p1=$(find_in_path prometheus) || p1=""
  p2=$(find_in_path promtool) || p2=""
  if [[ -z $p1 || -z $p2 ]]; then
    say "prometheus installing (Debian package prometheus)..."
    : >"$LOGS/prometheus.log"
    apt_install prometheus
    stop_system_prometheus
    p1=$(find_in_path prometheus) || p1=""
    p2=$(find_in_path promtool) || p2=""
    [[ -n $p1 && -n $p2 ]] ||
      fail "prometheus and promtool still not found after apt-get install prometheus"
  fi
  link_bin prometheus "$p1"
  link_bin promtool "$p2"
  # "prometheus, version 2.42.0+ds (branch: ..., revision: ...)"
  v=$("$BIN/prometheus" --version 2>&1 | awk 'NR == 1 { print $3; exit }') ||
    fail "'prometheus --version' failed"
  [[ -n $v ]] || fail "'prometheus --version' printed no version"
  write_stamp prometheus "$v"
  say "prometheus $v ok (linked from ${p1%/*})"
}

# --- main ---------------------------------------------------------------------

mkdir -p "$BIN" "$STAMPS" "$LOGS"
# Serialise concurrent runs (e.g. parallel make targets).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS/.setup.lock"
  flock 9
fi

ensure cometbft "$COMETBFT_VERSION" probe_cometbft install_cometbft cometbft abci-cli
ensure btcd "$BTCD_VERSION" probe_btcd install_btcd btcd btcctl
ensure anvil "$ANVIL_VERSION" probe_anvil install_anvil anvil
ensure solc "$SOLC_VERSION" probe_solc install_solc solcjs
ensure_cosmjs
ensure_postgres
ensure_prometheus

CURRENT=setup
say "all tools ready in .tools/bin (put it first in PATH)"
