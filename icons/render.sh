#!/usr/bin/env bash
# Renders the PNGs from the SVG sources in this folder (rsvg-convert, Debian librsvg2-bin).
# Tray icons at 64 px: a StatusNotifierItem host scales the one image to its panel, and a
# 2x (HiDPI) panel draws 44-64 px, so a 32 px source was blurred there; scaled down it
# stays sharp. App icons at every size the hicolor theme has (16-512) plus app.svg as the
# scalable one; the packages install them (src-tauri/tauri.conf.json, bundle.icon).
set -euo pipefail
cd "$(dirname "$0")"
for s in healthy low empty stale; do rsvg-convert -w 64 -h 64 "tray-$s.svg" -o "tray-$s.png"; done
for n in 16 24 32 48 64 128 256 512; do rsvg-convert -w $n -h $n app.svg -o "app-$n.png"; done
