# Sourced by setup.sh and deploy-tools.sh: apt-get that waits for another
# apt or dpkg run (unattended upgrades on a fresh CI machine, a parallel
# make) instead of failing on its lock: dpkg's lock is waited for by apt
# itself (DPkg::Lock::Timeout), the lists lock of `apt-get update` by retrying.
apt_get() {
  local err i
  err=$(mktemp)
  for i in $(seq 1 60); do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" 2>"$err"; then rm -f "$err"; return 0; fi
    grep -q 'Could not get lock\|Unable to lock' "$err" || { cat "$err" >&2; rm -f "$err"; return 1; }
    ((i == 1)) && echo "apt: another apt or dpkg run holds the lock; waiting" >&2
    sleep 10
  done
  cat "$err" >&2; rm -f "$err"; return 1
}
