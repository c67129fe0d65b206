#!/usr/bin/env bash
# Renders the PNGs from the SVG sources in this folder (rsvg-convert, Debian librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")"
for s in healthy low empty stale; do rsvg-convert -w 32 -h 32 "tray-$s.svg" -o "tray-$s.png"; done
for n in 32 128 512; do rsvg-convert -w $n -h $n app.svg -o "app-$n.png"; done
