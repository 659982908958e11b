#!/usr/bin/env bash
# The README's main job; grows into encode + decode of the bundled example clip.
set -euo pipefail
audiotok --version
