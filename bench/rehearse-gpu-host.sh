#!/usr/bin/env bash
# Rehearses bench/gpu-all.sh on this CPU machine, on a stand-in for the GPU host: a Debian forky chroot
# with its PyTorch (python3-torch 2.14, newer than the host's 2.11; this machine's Debian has 1.13), g++
# and python3, and no Node or node_modules — the bundles and the Node binary gpu-prep stages are all it
# gets, as on the host. Every stage runs with small CPU settings, so what it checks is that each one
# builds, loads, trains and writes its JSON against a 2.x LibTorch, not its figures.
#   bench/rehearse-gpu-host.sh [stage ...]     (default: train-step cifar qat prune distill)
#   bench/rehearse-gpu-host.sh tests           the addon's and PyTorch oracles' tests (vitest) there, with
#                                              this checkout's node_modules and dist/ mounted in
# Needs root, debootstrap and Debian's mirror (the chroot is made once, ~1.5 GB, in
# $SLIM_REHEARSAL_DIR, default gpu-host-forky in slimkit's cache folder, ~/.cache/slimkit). Run gpu-prep and `bench/gpu-all.sh
# prepare` first; this script sends the tree as the device tool would (tracked files plus .gpu*).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# slimkit's cache folder by src/data/cache.ts's rule: $SLIM_CACHE_DIR, else $XDG_CACHE_HOME/slimkit or ~/.cache/slimkit.
slim_cache=${SLIM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slimkit}
chroot_dir=${SLIM_REHEARSAL_DIR:-$slim_cache/gpu-host-forky}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(train-step cifar qat prune distill)

[ "$(id -u)" = 0 ] || { echo "rehearse-gpu-host: needs root (chroot, mounts)" >&2; exit 2; }
[ -f .gpu/slim/STAMP ] && [ -f .gpu/node.xz ] || {
  echo "rehearse-gpu-host: nothing staged: run ../shared/tools/gpu-prep && bench/gpu-all.sh prepare first" >&2; exit 2; }

# Debian's python3-torch keeps no headers beside the module (pip's wheel does): libtorch-dev has them.
if [ ! -x "$chroot_dir/usr/bin/python3" ] || ! chroot "$chroot_dir" python3 -c 'import torch' 2>/dev/null || [ ! -f "$chroot_dir/usr/include/ATen/ATen.h" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  # bookworm's debootstrap has no forky script; sid's is the same.
  script=/usr/share/debootstrap/scripts/sid
  [ -x "$chroot_dir/usr/bin/apt-get" ] || debootstrap --variant=minbase forky "$chroot_dir" "$mirror" "$script"
  echo "deb $mirror forky main" > "$chroot_dir/etc/apt/sources.list"
  # A snapshot mirror may serve a Release file past its Valid-Until.
  echo 'Acquire::Check-Valid-Until "false";' > "$chroot_dir/etc/apt/apt.conf.d/99no-valid-until"
  # libgloo-dev and python3-onnx only for `tests` (data-parallel tests, fixture scripts).
  chroot "$chroot_dir" bash -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-torch libtorch-dev python3-onnx libgloo-dev g++ make procps' >/dev/null
fi

mounts=()
cleanup() { for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
for fs in proc sys dev; do
  mountpoint -q "$chroot_dir/$fs" && continue
  case "$fs" in
    proc) mount -t proc proc "$chroot_dir/proc" ;;
    sys) mount -t sysfs sys "$chroot_dir/sys" ;;
    dev) mount --rbind /dev "$chroot_dir/dev" ;;
  esac
  mounts+=("$chroot_dir/$fs")
done

# The tree the device tool would carry: tracked and untracked-not-ignored files, plus the staged .gpu*.
proj="$chroot_dir/root/proj"
# A run killed before its cleanup leaves this checkout's node_modules and dist mounted there: deleting
# the old tree through them would delete them here. Unmount first; refuse if anything stays mounted.
while read -r _ mnt _; do case "$mnt" in "$proj"/*) umount -l "$mnt" || true ;; esac; done < /proc/mounts
if grep -q " $proj/" /proc/mounts; then echo "rehearse-gpu-host: something is still mounted under $proj; unmount it first" >&2; exit 2; fi
rm -rf "$proj" && mkdir -p "$proj"
{ git ls-files -co --exclude-standard; find .gpu .gpu-d* .gpu-ort -type f -not -path '.gpu/slim/node_modules/*' 2>/dev/null; } |
  tar -cf - -T - | tar -xf - -C "$proj"

if [ "${stages[0]}" = tests ]; then
  # The tests that load the addon or ask PyTorch for an oracle; the rest do not touch LibTorch.
  npm run build --silent
  for d in node_modules dist; do mkdir -p "$proj/$d"; mount --bind "$root/$d" "$proj/$d"; mounts+=("$proj/$d"); done
  tests=$(grep -l -E "nativeAvailable|glooAvailable|python3" test/*.test.ts | grep -v -E "deploy-|gpu-bundles" | tr '\n' ' ')
  # Debian's own Node here, not gpu-prep's: Debian's LibTorch 2.14 links the system OpenSSL and libuv
  # (cpp-httplib, gloo), which a node with those built in shadows (LD_DEBUG: 262 libssl symbols bound to
  # node); with that node 3 of 3 runs of these tests lost a process to heap corruption, with Debian's
  # (shared OpenSSL and libuv) none did. The pip PyTorch of a GPU host brings neither library.
  chroot "$chroot_dir" bash -c 'command -v node >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs >/dev/null'
  chroot "$chroot_dir" bash -c "cd /root/proj && source .gpu/setup.sh >/dev/null 2>&1 && export PATH=/usr/bin:\$PATH &&
    NODE_ADDON_API_INCLUDE=/root/proj/.gpu/slim/napi scripts/build-native.sh --direct &&
    node --version && node node_modules/vitest/vitest.mjs run $tests"
  exit $?
fi

# Small CPU versions of each stage (gpu-all.sh passes these after its own, so they win).
declare -A small=(
  [train-step]="--device cpu --batch 32 --precision bf16 --threads 2 --steps 3 --warmup 1"
  [cifar]="--device cpu --epochs 1 --batch 64 --width 0.25 --train-limit 2000 --test-limit 500 --threads 2"
  [qat]="--device cpu --epochs 1 --train-limit 1000 --test-limit 500 --calib 128 --batch 64 --threads 2"
  [prune]="--device cpu --epochs 1 --steps 1 --train-limit 1000 --batch 64 --threads 2"
  [distill]="--device cpu --teacher-epochs 1 --epochs 1 --seeds 0 --teacher-width 0.25 --student-width 0.25 --train-limit 1000 --test-limit 500 --batch 64 --precision bf16 --threads 2"
)
failed=()
for stage in "${stages[@]}"; do
  [ -n "${small[$stage]:-}" ] || { echo "rehearse-gpu-host: unknown stage '$stage'" >&2; exit 2; }
  log=$(mktemp)
  chroot "$chroot_dir" bash -c "cd /root/proj && bench/gpu-all.sh run $stage ${small[$stage]}" 2>&1 | tee "$log"
  # gpu-all.sh keeps going when a stage fails (so one failure costs only itself); here it is the verdict.
  if grep -q "failed or timed out" "$log" || ! tail -n 1 "$proj/.gpu-out/$stage.json" 2>/dev/null | grep -q '^{'; then failed+=("$stage"); fi
  rm -f "$log"
done
torch=$(chroot "$chroot_dir" python3 -c 'import torch; print(torch.__version__)')
if [ ${#failed[@]} -gt 0 ]; then
  echo "rehearse-gpu-host: failed with PyTorch $torch: ${failed[*]}" >&2
  exit 1
fi
echo "rehearse-gpu-host: ${stages[*]}: all ran with PyTorch $torch (CPU, no Node packages)" >&2
