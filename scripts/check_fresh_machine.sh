#!/usr/bin/env bash
# The fresh-machine check: builds a minimal Debian 12 root with debootstrap, clones this repo into
# it and runs the README's commands there in order, as a new user on a new machine would. Prints
# what passed, how many tests ran and how long each command took.
#
#   scripts/check_fresh_machine.sh            both commands: scripts/main.sh, then scripts/test.sh
#   scripts/check_fresh_machine.sh main       the first command only (what .ci/run runs)
#
# Needs root (debootstrap, chroot, mounts). The package mirror is read from this machine's apt
# configuration at run time. When the archive cannot be reached the check says so and exits 0
# (skipped), so an offline CI run is not failed for the network's sake.
# FRESH_ROOT=DIR keeps the root there (default: a temporary folder, removed at the end).
# The root reuses this machine's ccache folder (bind-mounted), so compiling what this machine has
# compiled before is quick; every header and library is still looked up in the new root, so a
# missing package still fails the build. FRESH_SHARE_CCACHE=0 compiles everything afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
which_commands=${1:-both}
case "$which_commands" in main | both) ;; *) echo "usage: $0 [main|both]" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine check: needs root (debootstrap, chroot)" >&2; exit 2; }

# The first Debian bookworm "main" archive in this machine's apt sources (deb822 or one-line form).
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; suites = ""; comps = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) uri = $i; if ($i ~ /^Suites:/) suites = $i; if ($i ~ /^Components:/) comps = $i }
        sub(/^URIs:[ \t]*/, "", uri); split(uri, u, /[ \t]+/)
        if (suites ~ /(^|[ \t])bookworm([ \t]|$)/ && comps ~ /main/ && u[1] != "") { print u[1]; exit } }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i + 1) == "bookworm") { print $i; exit } }'
}
mirror=$(set +o pipefail; find_mirror 2>/dev/null | head -1)
[ -n "$mirror" ] || { echo "fresh-machine check: no Debian bookworm archive in /etc/apt sources" >&2; exit 1; }
mirror=${mirror%/}

skip() { echo "fresh-machine check: SKIPPED: $*"; exit 0; }
probe=$(mktemp)
if ! timeout 60 /usr/lib/apt/apt-helper download-file "$mirror/dists/bookworm/InRelease" "$probe" > /dev/null 2>&1; then
  rm -f "$probe"
  skip "the package archive $mirror cannot be reached from this machine"
fi
rm -f "$probe"
if ! command -v debootstrap > /dev/null; then
  echo "fresh-machine check: installing debootstrap"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap > /dev/null; } \
    || skip "debootstrap is not installed and could not be installed"
fi

root=${FRESH_ROOT:-$(mktemp -d /tmp/neutrino-fresh.XXXXXX)}
keep=${FRESH_ROOT:+1}
log_dir=$(mktemp -d /tmp/neutrino-fresh-logs.XXXXXX)
cleanup() {
  for m in root/.cache/ccache dev/pts dev proc sys; do umount -l "$root/$m" 2> /dev/null || true; done
  [ -n "$keep" ] || rm -rf --one-file-system "$root"
}
trap cleanup EXIT

seconds() { date +%s; }
t0=$(seconds)
echo "fresh-machine check: debootstrap bookworm (minbase) from $mirror into $root"
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" > "$log_dir/debootstrap.log" 2>&1; then
  if grep -qiE "couldn't download|failed to download|temporary failure|could not resolve" "$log_dir/debootstrap.log"; then
    skip "debootstrap could not download from $mirror (see $log_dir/debootstrap.log)"
  fi
  tail -20 "$log_dir/debootstrap.log"; echo "fresh-machine check: FAILED: debootstrap"; exit 1
fi
echo "fresh-machine check: root ready in $(($(seconds) - t0)) s"

# A new user's machine: the repo cloned (committed files only) with shared/ beside it, DNS, the
# kernel file systems. Nothing else of this machine is visible inside.
mkdir -p "$root/work"
git clone -q "$repo" "$root/work/neutrino"
[ -d "$repo/../shared" ] && cp -a "$repo/../shared" "$root/work/shared"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
ccache_dir=${CCACHE_DIR:-$HOME/.cache/ccache}
if [ "${FRESH_SHARE_CCACHE:-1}" = 1 ]; then
  mkdir -p "$ccache_dir" "$root/root/.cache/ccache"
  mount --bind "$ccache_dir" "$root/root/.cache/ccache"
fi

run_in_root() {  # NAME COMMAND: runs COMMAND in the clone, logs it, prints its time and result
  local name=$1 command=$2 start status
  start=$(seconds)
  set +e
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 CI=true bash -c "cd /work/neutrino && $command" < /dev/null > "$log_dir/$name.log" 2>&1
  status=$?
  set -e
  elapsed=$(($(seconds) - start))
  if [ $status -eq 0 ]; then result=passed; else result="FAILED (exit $status)"; fi
  summary+=("$command: $result in ${elapsed} s$(test_counts "$log_dir/$name.log")")
  echo "fresh-machine check: $command: $result in ${elapsed} s (log: $log_dir/$name.log)"
  [ $status -eq 0 ] || { tail -40 "$log_dir/$name.log"; failed=1; }
}
test_counts() {  # the ctest totals and accuracy lines a log holds, on one line
  local counts
  counts=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+|\"accuracy\"|no findings in" "$1" |
    sed -E 's/^[[:space:]]+//' | paste -sd ';' -)
  [ -z "$counts" ] || printf '; %s' "$counts"
}

summary=()
failed=0
run_in_root main scripts/main.sh
if [ "$which_commands" = both ] && [ $failed -eq 0 ]; then
  run_in_root test scripts/test.sh
fi
echo "fresh-machine check summary (Debian 12 minbase, total $(($(seconds) - t0)) s):"
for line in "${summary[@]}"; do echo "  $line"; done
[ $failed -eq 0 ] || { echo "fresh-machine check: FAILED"; exit 1; }
echo "fresh-machine check: passed"
