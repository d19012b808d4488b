#!/usr/bin/env bash
# netns_setup.sh -- install the Debian packages the network-namespace scan test
# (tests/e2e/test_netns_scan.py, `pytest -m net`) needs. Idempotent and
# non-interactive; run as root on Debian 12. Nothing is started or configured:
# the test starts its own daemons inside its own namespaces.
#
#   masscan zmap              the scanners under test (Debian 12: 1.3.2, 2.1.1)
#   openssh-server nginx vsftpd memcached
#                             real daemons the scanners must find
#   openssl                   self-signed certificate for nginx TLS
#   iproute2                  `ip netns`, veth
#   ethtool                   veth checksum offload off (pcap scanners see
#                             partial checksums otherwise)
set -euo pipefail

PKGS="masscan zmap openssh-server nginx vsftpd memcached openssl iproute2 ethtool"

if [ "$(id -u)" != 0 ]; then
  echo "netns_setup.sh: must run as root (apt-get install)" >&2
  exit 2
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
    || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "netns_setup.sh: all packages present ($PKGS)"
  exit 0
fi

# Installing a daemon package normally starts it in the host namespace
# (sshd/nginx/memcached listening on the machine's real interfaces). The test
# needs none of that, so block service starts for the duration of the install
# unless the machine already does so (e.g. a container's policy-rc.d).
POLICY=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$POLICY"; chmod 755 "$POLICY"; ours=1
fi
trap '[ "$ours" = 1 ] && rm -f "$POLICY"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "netns_setup.sh: installed:$missing"
