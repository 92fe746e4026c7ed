#!/bin/sh
# Run on the root file system ($1) after mmdebstrap is done: what Debian's slim images drop, for
# files that reached the tree before the dpkg filters applied, plus logs and caches.
set -eu
root=$1
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
for d in usr/share/man usr/share/groff usr/share/info usr/share/lintian usr/share/linda \
         usr/share/gnome/help usr/share/help usr/share/omf; do
  if [ -d "$root/$d" ]; then find "$root/$d" -mindepth 1 -delete; fi
done
if [ -d "$root/usr/share/locale" ]; then
  find "$root/usr/share/locale" -mindepth 1 ! -name locale.alias ! -type d -delete
  find "$root/usr/share/locale" -mindepth 1 -type d -empty -delete
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/* "$root"/var/tmp/*
rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/cache/ldconfig/aux-cache
find "$root/var/log" -type f -delete
mkdir -p "$root/var/lib/apt/lists/partial"
