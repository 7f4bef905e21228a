#!/usr/bin/env bash
# Packs .devkit/ for bench/device.sh on a machine without Node or node_modules: this machine's
# node (xz), bench/device.ts bundled by esbuild (its only external: the `webgpu` package) and
# that package's loader and Linux x86-64 dawn.node (xz; device.sh unpacks both). Needs node_modules here (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.devkit/' .git/info/exclude 2>/dev/null || echo '/.devkit/' >>.git/info/exclude
rm -rf .devkit && mkdir -p .devkit/node_modules/webgpu/dist/linux-x64
npx esbuild bench/device.ts --bundle --platform=node --format=esm --target=node20 --external:webgpu \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile=.devkit/device.mjs --log-level=warning
w=node_modules/webgpu
cp $w/package.json $w/index.js .devkit/node_modules/webgpu/
# xz: the working tree (~29 MiB) and the carried kit must stay under the device tool's 64 MiB.
xz -T0 -6 -c $w/dist/linux-x64/dawn.node >.devkit/node_modules/webgpu/dist/linux-x64/dawn.node.xz
xz -T0 -6 -c "$(command -v node)" >.devkit/node.xz
du -sh .devkit .devkit/*
