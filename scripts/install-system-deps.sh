#!/usr/bin/env bash
# System packages the tests need that pip cannot provide, installed from Debian's archive:
#   chromium  headless browser for the reader-study app tests (driven by the Playwright package;
#             `playwright install` downloads its own browser builds and is not used).
#   orthanc   Debian's Orthanc PACS, the DICOM destination of the end-to-end tests, which start
#             and stop their own Orthanc (tests/orthanc.py); the package's system service is
#             neither started nor enabled (see below).
# Idempotent: does nothing when every package is present. Needs root (or sudo) to install.
set -euo pipefail

packages=(chromium orthanc)

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

# Orthanc's package would start (and enable) a system service listening on every interface
# (DICOM 4242, HTTP 8042), reachable from outside the machine. During the install a
# policy-rc.d answering 101 ("forbidden") stops invoke-rc.d and deb-systemd-invoke from
# starting any service, whatever the machine's own policy; the machine's file is put back after.
policy=/usr/sbin/policy-rc.d
saved_policy="$policy.install-system-deps-saved"
restore_policy() {
    if [ -e "$saved_policy" ]; then
        "${as_root[@]}" mv -f "$saved_policy" "$policy"
    else
        "${as_root[@]}" rm -f "$policy"
    fi
}
# A saved file left by an interrupted run is the machine's own: keep it, never overwrite it.
if [ -e "$policy" ] && [ ! -e "$saved_policy" ]; then
    "${as_root[@]}" mv -f "$policy" "$saved_policy"
fi
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
"${as_root[@]}" chmod 755 "$policy"

echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null

restore_policy
trap - EXIT

# The postinst still registers the service for boot; disable it so a reboot does not start it.
# Only for an Orthanc installed here: an Orthanc the machine already had is left as it was.
if [[ " ${missing[*]} " == *" orthanc "* ]]; then
    if command -v systemctl >/dev/null 2>&1; then
        # Without a running systemd, systemctl disable still removes the boot links.
        "${as_root[@]}" systemctl disable --quiet orthanc.service 2>/dev/null || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        "${as_root[@]}" update-rc.d orthanc disable >/dev/null 2>&1 || true
    fi
fi
