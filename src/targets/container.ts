// What a process's cgroup and mounts say about the container and pod it runs
// in. Pure parsing, so it can be tested on the paths real runtimes write:
//
//   docker (systemd)      0::/system.slice/docker-<id>.scope
//   docker (cgroupfs)     0::/docker/<id>
//   podman                0::/machine.slice/libpod-<id>.scope, 0::/libpod_parent/libpod-<id>
//   containerd (k8s)      0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//   kubelet (cgroupfs)    0::/kubepods/besteffort/pod<uid>/<id>
//   cri-o                 0::/kubepods.slice/.../crio-<id>.scope
//
// Paths are relative to the reader's cgroup namespace: an agent in a pod with
// its own cgroup namespace sees other pods as /../../kubepods..., which still
// holds the ids.

const ID64 = /[0-9a-f]{64}/;
// The last path component that is or ends in a 64-hex id, with the runtime prefixes.
const CONTAINER_SEGMENT = /^(?:(?:docker|cri-containerd|crio|libpod|containerd|conmon)-)?([0-9a-f]{64})(?:\.scope)?$/;
const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/|$)/;

/**
 * The process's cgroup path: the unified (v2) hierarchy's when it has one,
 * else the v1 `name=systemd` one, else the first listed.
 */
export function cgroupPathOf(procCgroup: string): string {
  let v1: string | undefined;
  let systemd: string | undefined;
  for (const line of procCgroup.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const hid = line.slice(0, a);
    const controllers = line.slice(a + 1, b);
    const p = line.slice(b + 1);
    if (hid === '0' && controllers === '') return p;
    if (controllers === 'name=systemd') systemd ??= p;
    v1 ??= p;
  }
  return systemd ?? v1 ?? '';
}

/** The container id from any hierarchy of /proc/<pid>/cgroup, or null. */
export function containerIdFromCgroup(procCgroup: string): string | null {
  for (const line of procCgroup.split('\n')) {
    const p = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    const parts = p.split('/');
    for (let i = parts.length - 1; i >= 0; i--) {
      const m = CONTAINER_SEGMENT.exec(parts[i]);
      if (m) return m[1];
    }
  }
  return null;
}

/**
 * With a cgroup namespace (or some cgroup v2 setups) /proc/<pid>/cgroup says
 * only "0::/"; the runtime's own files, bind-mounted into the container, name
 * the id: docker's /var/lib/docker/containers/<id>/hostname, podman's
 * .../overlay-containers/<id>/userdata/hostname, containerd's
 * .../sandboxes/<id>/hostname (the pod sandbox, not the container: skipped).
 */
export function containerIdFromMountinfo(mountinfo: string): string | null {
  for (const line of mountinfo.split('\n')) {
    const root = line.split(' ')[3] ?? '';
    let m = /\/containers\/([0-9a-f]{64})\/(?:hostname|hosts|resolv\.conf)$/.exec(root);
    if (!m) m = /\/overlay-containers\/([0-9a-f]{64})\/userdata\//.exec(root);
    if (m && ID64.test(m[1])) return m[1];
  }
  return null;
}

/** The pod uid a kubelet puts in the cgroup path (systemd driver writes "_" for "-"), or null. */
export function podUidFromCgroup(procCgroup: string): string | null {
  const m = POD_UID.exec(procCgroup);
  return m ? m[1].replace(/_/g, '-') : null;
}

/**
 * containerStatuses[].containerID as the API server gives it
 * ("containerd://<id>", "cri-o://<id>", "docker://<id>") -> the bare id.
 */
export function bareContainerId(apiId: string): string {
  const i = apiId.indexOf('://');
  return i >= 0 ? apiId.slice(i + 3) : apiId;
}
