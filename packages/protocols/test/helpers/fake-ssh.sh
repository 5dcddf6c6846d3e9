#!/bin/sh
# Stands in for ssh under `scp -O -S fake-ssh.sh`: scp calls it as `ssh [options] host command`;
# it runs the command locally through stdio-tap.mjs, logging both directions to $TAP_LOG and the
# command line to $TAP_LOG.cmd. No sshd: the bytes are the real scp source/sink protocol.
for last; do :; done
printf '%s' "$last" > "$TAP_LOG.cmd"
exec "$TAP_NODE" "$(dirname "$0")/stdio-tap.mjs" "$TAP_LOG" /bin/sh -c "$last"
