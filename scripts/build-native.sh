#!/usr/bin/env bash
# Builds the LibTorch training addon: native/build/Release/slimkit_torch.node.
#   scripts/build-native.sh            node-gyp against the Node headers in /usr/include/node (or $NODEDIR)
#   scripts/build-native.sh --direct   plain g++, for hosts without node-gyp's Node headers (a GPU host):
#                                      needs $NODE_API_INCLUDE (node_api.h) and napi.h from node-addon-api
#                                      ($NODE_ADDON_API_INCLUDE, default node_modules/node-addon-api)
# LibTorch is found by scripts/find-libtorch.mjs ($LIBTORCH → python3's torch → Debian libtorch-dev).
# Nothing is downloaded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! SLIM_LIBTORCH_JSON=$(node scripts/find-libtorch.mjs); then
  echo "build-native: no LibTorch, so no training addon. Every other slim command still works." >&2
  exit 1
fi
export SLIM_LIBTORCH_JSON
field() { node scripts/find-libtorch.mjs --gyp "$1"; }
echo "build-native: LibTorch $(field version) from $(field source)$( [ "$(field cuda)" = true ] && echo ' (CUDA)')" >&2
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)

# Data-parallel CUDA training uses c10d's NCCL process group (native/src/dist_group.cc), whose header
# needs nccl.h: pip's nvidia-nccl package, the system or $NCCL_INCLUDE. Without it CUDA ranks use Gloo.
nccl_flags=()
if [ "$(field cuda)" = true ]; then
  src=$(field source)
  py=python3
  case "$src" in python:*) py=${src#python:} ;; esac
  pip_nccl=$("$py" -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "include"))' 2>/dev/null || true)
  for d in ${NCCL_INCLUDE:-} $pip_nccl /usr/include /usr/local/cuda/include; do
    if [ -f "$d/nccl.h" ]; then nccl_flags=(-I"$d"); break; fi
  done
  if [ ${#nccl_flags[@]} -gt 0 ]; then
    echo "build-native: nccl.h in ${nccl_flags[0]#-I} (NCCL for data-parallel training)" >&2
    export CXXFLAGS="${CXXFLAGS:-} ${nccl_flags[0]}"
  else
    echo "build-native: no nccl.h (set NCCL_INCLUDE); data-parallel CUDA training will use Gloo" >&2
  fi
fi

mode=${1:-gyp}
nodedir=${NODEDIR:-/usr}
if [ "$mode" != "--direct" ] && [ ! -f "$nodedir/include/node/common.gypi" ]; then
  echo "build-native: no Node headers at $nodedir/include/node; building with g++ directly" >&2
  mode=--direct
fi

if [ "$mode" = "--direct" ]; then
  napi=${NODE_API_INCLUDE:-$nodedir/include/node}
  addon=${NODE_ADDON_API_INCLUDE:-$root/node_modules/node-addon-api}
  [ -f "$napi/node_api.h" ] || { echo "build-native: node_api.h not found in $napi (set NODE_API_INCLUDE)" >&2; exit 1; }
  [ -f "$addon/napi.h" ] || { echo "build-native: napi.h not found in $addon (set NODE_ADDON_API_INCLUDE)" >&2; exit 1; }
  out=native/build/Release
  mkdir -p "$out/obj"
  flags=(-std="$(field cxxStd)" -O2 -fPIC -fexceptions -frtti -Wno-deprecated-declarations -Wno-overloaded-virtual
         -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DBUILDING_NODE_EXTENSION -I"$napi" -I"$addon")
  for d in $(field defines); do flags+=("-D$d"); done
  for i in $(field includeDirs); do flags+=("-I$i"); done
  flags+=("${nccl_flags[@]}")
  pids=()
  for src in native/src/*.cc; do
    obj="$out/obj/$(basename "${src%.cc}").o"
    g++ "${flags[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
  libdir=$(field libDir)
  # shellcheck disable=SC2046
  g++ -shared -o "$out/slimkit_torch.node" "$out"/obj/*.o -L"$libdir" -Wl,-rpath,"$libdir" $(field libs)
else
  # configure + build rather than rebuild: make recompiles only what changed (gyp's Makefiles also
  # rebuild when a command line changes, e.g. another LibTorch was found).
  gyp="$root/node_modules/.bin/node-gyp"
  (cd native && "$gyp" configure --nodedir="$nodedir" --loglevel=warn && "$gyp" build -j "$jobs" --loglevel=warn)
fi
echo "build-native: native/build/Release/slimkit_torch.node in $(( $(date +%s) - start )) s" >&2
