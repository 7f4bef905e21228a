#!/usr/bin/env bash
# The one-go GPU benchmark: bench/device.sh [--quick] [--peak-tflops x] [--out file] [--skip ...]
# (options: bench/device.ts). Run from anywhere; it works in the repository root. Under 8 minutes
# on an H100/H200 (it stops itself at 470 s); `--quick` runs end to end on SwiftShader.
#
# Node: the system's `node` (>= 20) when there is one. A GPU machine without Node gets it from the
# kit that `bench/device-kit.sh` packs here beforehand into .devkit/ (ignored by git, 29 MB:
# node xz-compressed, one esbuild bundle of bench/device.ts, and of node_modules only the
# `webgpu` package's index.js, package.json and dist/linux-x64/dawn.node, xz); the device tool
# carries it with `carry: [".devkit"]` (and `.gl` for the Vulkan loader, below).
# Vulkan: Dawn needs libvulkan.so.1. When ldconfig knows none, the .deb files in .gl/ (libvulkan1,
# fetched as /work/.library/device/README.md says) are unpacked into /. NVIDIA's ICD is pointed at
# when the driver put it under /usr/local/nvidia.
set -euo pipefail
cd "$(dirname "$0")/.."

# grep reads all of ldconfig's output: with pipefail, grep -q's early exit would fail the pipe.
if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
  if compgen -G '.gl/*.deb' >/dev/null; then
    echo "device.sh: no Vulkan loader; unpacking .gl/*.deb"
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  else
    echo "device.sh: warning: no libvulkan.so.1 and no .gl/*.deb to unpack: Dawn will find no GPU adapter" >&2
  fi
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
  export VK_DRIVER_FILES="$icd"
fi

NODE=""
if command -v node >/dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)'; then
  NODE=$(command -v node)
elif [ -f .devkit/node.xz ]; then
  mkdir -p /tmp/statcell-node
  xz -dc .devkit/node.xz >/tmp/statcell-node/node
  chmod +x /tmp/statcell-node/node
  NODE=/tmp/statcell-node/node
else
  echo "device.sh: no node >= 20 here and no .devkit/node.xz: run bench/device-kit.sh where Node is, and carry .devkit" >&2
  exit 1
fi
echo "device.sh: $NODE $("$NODE" --version) on $(uname -srm); $(nproc) CPUs"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true

# The kit's bundle when there is one (bench/device-kit.sh bundles the sources as they are then:
# pack it again after changing them, and try it here with `--quick`); else tsx from node_modules.
if [ -f .devkit/device.mjs ]; then
  dawn=.devkit/node_modules/webgpu/dist/linux-x64/dawn.node
  [ -f "$dawn" ] || xz -dc "$dawn.xz" >"$dawn"
  run=("$NODE" .devkit/device.mjs)
elif [ -x node_modules/.bin/tsx ]; then
  run=("$NODE" node_modules/tsx/dist/cli.mjs bench/device.ts)
else
  echo "device.sh: neither .devkit/device.mjs nor node_modules/.bin/tsx: run bench/device-kit.sh first" >&2
  exit 1
fi
# --quick (SwiftShader) has no time limit; the GPU run stops itself inside 8 minutes.
if [[ " $* " == *" --quick "* ]]; then exec "${run[@]}" "$@"; fi
exec timeout 470 "${run[@]}" "$@"
