#!/usr/bin/env bash
# System packages the tests need that pip cannot provide, installed from Debian's archive:
#   chromium  headless browser for the reader-study app tests (driven by the Playwright package;
#             `playwright install` downloads its own browser builds and is not used).
# Idempotent: does nothing when every package is present. Needs root (or sudo) to install.
set -euo pipefail

packages=(chromium)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages present: ${packages[*]}"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install ${missing[*]} with your package manager" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    # -n: never prompt for a password; without passwordless sudo we skip, saying so.
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "install-system-deps: run as root to install ${missing[*]}" >&2
        exit 1
    fi
fi

echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
