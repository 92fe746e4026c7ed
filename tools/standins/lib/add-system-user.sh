#!/bin/sh
# add-system-user.sh ROOT NAME ID HOME SHELL
# mmdebstrap essential hook: create a system group and user NAME with uid = gid = ID in the
# root file system ROOT *before* the packages that would create them (with some other id) are
# installed, as the official images do with groupadd/useradd. The essential phase has no
# useradd yet (passwd is not Essential), so the entries are written directly; the passwd
# package's postinst (shadowconfig) adds the shadow entries when it is installed afterwards.
set -eu
root=$1 name=$2 id=$3 home=$4 shell=$5
if grep -q "^$name:" "$root/etc/passwd" || grep -q "^[^:]*:[^:]*:$id:" "$root/etc/passwd"; then
  echo "add-system-user: $name or uid $id already exists in $root/etc/passwd" >&2
  exit 1
fi
echo "$name:x:$id:" >>"$root/etc/group"
echo "$name:x:$id:$id::$home:$shell" >>"$root/etc/passwd"
days=$(($(date +%s) / 86400))
[ ! -f "$root/etc/gshadow" ] || echo "$name:!::" >>"$root/etc/gshadow"
[ ! -f "$root/etc/shadow" ] || echo "$name:!:$days::::::" >>"$root/etc/shadow"
