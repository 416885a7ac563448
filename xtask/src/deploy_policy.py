"""What `cargo xtask validate-deploy` checks of deploy/kubernetes beyond the
API schemas (kubernetes-validate does those): the rules a user relies on
without reading the manifests, for each variant as `kubectl apply -k`
applies it (the kustomization rendered).

1. `kubectl apply -k` never overwrites a real Secret: no object a
   kustomization applies is a Secret (the credentials are created once by
   the user; the `secret.example.yaml` files are templates, applied only by hand).
2. Every object and pod template carries the recommended
   `app.kubernetes.io/*` labels.
3. Every pod template meets the Pod Security Standards "restricted" profile
   (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
   and the namespace enforces that profile.
4. The ConfigMap's config is deploy/chela.json5 to the byte.
5. A gateway Deployment of more than one replica updates by RollingUpdate
   and has a PodDisruptionBudget over its pods; one of one replica updates
   by Recreate (two gateways on one state dir would answer twice).

Run from the repository root: `deploy_policy.py --applied RENDERED.yaml...
--template EXAMPLE.yaml...`; exits non-zero naming the file, object and
field of every violation.
"""

import sys

import yaml

LABELS = {
    "app.kubernetes.io/part-of": "chela",
    "app.kubernetes.io/managed-by": "kustomize",
}
# The application each component is (its `app.kubernetes.io/name`) and its instance.
APPS = {"database": ("postgresql", "chela-postgres")}
GATEWAY_APP = ("chela", "chela")
# Volume types the restricted profile allows.
VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def documents(name):
    with open(name) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def where(name, obj):
    return f"{name}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"


def check_labels(name, obj, metadata, path):
    labels = metadata.get("labels") or {}
    app, instance = APPS.get(labels.get("app.kubernetes.io/component"), GATEWAY_APP)
    expected = dict(LABELS, **{"app.kubernetes.io/name": app, "app.kubernetes.io/instance": instance})
    for key, value in expected.items():
        if key == "app.kubernetes.io/managed-by" and name.endswith(".example.yaml"):
            continue  # applied by hand, not by kustomize
        if labels.get(key) != value:
            problem(where(name, obj), f"{path}.labels.{key} must be {value!r} (is {labels.get(key)!r})")
    if obj.get("kind") != "Namespace" and "app.kubernetes.io/component" not in labels:
        problem(where(name, obj), f"{path}.labels.app.kubernetes.io/component is missing")


def check_restricted(name, obj):
    at = where(name, obj)
    pod = obj["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problem(at, f"spec.template.spec.{flag} must not be set")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= VOLUME_TYPES:
            problem(at, f"volume {volume['name']}: type {sorted(kinds - VOLUME_TYPES)} is not allowed")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_sc.get("runAsUser") == 0:
        problem(at, "spec.template.spec.securityContext.runAsUser must not be 0")
    containers = [("initContainers", c) for c in pod.get("initContainers") or []]
    containers += [("containers", c) for c in pod.get("containers") or []]
    for field, c in containers:
        path = f"spec.template.spec.{field}[{c['name']}].securityContext"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            problem(at, f"{path}.privileged must not be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(at, f"{path}.allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problem(at, f"{path}.capabilities.drop must contain ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problem(at, f"{path}.capabilities.add may only hold NET_BIND_SERVICE")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problem(at, f"{path}.runAsNonRoot (or the pod's) must be true")
        if sc.get("runAsUser") == 0:
            problem(at, f"{path}.runAsUser must not be 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problem(at, f"{path}.seccompProfile.type (or the pod's) must be RuntimeDefault or Localhost (is {seccomp!r})")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                problem(at, f"spec.template.spec.{field}[{c['name']}].ports: hostPort must not be set")


def check_updates(name, objects):
    pdbs = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        at = where(name, obj)
        replicas = obj["spec"].get("replicas", 1)
        strategy = (obj["spec"].get("strategy") or {}).get("type", "RollingUpdate")
        pod_labels = obj["spec"]["template"]["metadata"].get("labels") or {}
        if replicas > 1:
            if strategy != "RollingUpdate":
                problem(at, f"spec.strategy.type must be RollingUpdate with {replicas} replicas (is {strategy!r})")
            covering = [p for p in pdbs
                        if (p["spec"].get("selector") or {}).get("matchLabels", {}).items() <= pod_labels.items()]
            if not covering:
                problem(at, f"{replicas} replicas and no PodDisruptionBudget selects its pods")
        elif strategy != "Recreate":
            problem(at, "one replica must update by Recreate (two gateways on one state dir would answer twice)")


def main(args):
    applied, templates, mode = [], [], None
    for a in args:
        if a in ("--applied", "--template"):
            mode = a
        elif mode == "--applied":
            applied.append(a)
        elif mode == "--template":
            templates.append(a)
        else:
            sys.exit(f"usage: deploy_policy.py --applied FILE... --template FILE... (got {a!r})")
    for name in applied + templates:
        objects = documents(name)
        for obj in objects:
            check_labels(name, obj, obj.get("metadata", {}), "metadata")
            kind = obj.get("kind")
            if kind == "Secret" and name in applied:
                problem(where(name, obj), "a Secret in the kustomization: `kubectl apply -k` would overwrite the real credentials with the placeholder")
            if kind in POD_KINDS:
                template = obj["spec"]["template"].get("metadata", {})
                check_labels(name, obj, template, "spec.template.metadata")
                check_restricted(name, obj)
            if kind == "Namespace":
                labels = obj["metadata"].get("labels") or {}
                if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
                    problem(where(name, obj), "metadata.labels.pod-security.kubernetes.io/enforce must be 'restricted'")
            if kind == "ConfigMap" and obj["metadata"]["name"] == "chela-config":
                if obj["data"]["chela.json5"] != open("deploy/chela.json5").read():
                    problem(where(name, obj), "data.chela.json5 differs from deploy/chela.json5")
        if name in applied:
            check_updates(name, objects)
            if not any(o.get("kind") == "Deployment" for o in objects):
                problem(name, "renders no Deployment")
    if problems:
        sys.exit("\n".join(problems))


main(sys.argv[1:])
