"""Fail when a deployment manifest is broken: every k8s overlay rendered by kustomize and checked
strictly against the Kubernetes schemas, and docker-compose.yml against the Compose specification.

    python -m deploy.check_manifests        (make check-manifests; CI runs it)

Each overlay is rendered from a scratch copy of `k8s/` with the example secrets in place of the
git-ignored real ones (kustomize's secretGenerator needs the file to exist), both as it is and with
the optional prometheus-operator component, so the component is checked too. `kubernetes-validate`
and `check-jsonschema` ship their schemas, so the check needs no network. Objects of operator
kinds (Strimzi's Kafka/KafkaTopic, PrometheusRule, PodMonitor) have no schema there: they are
reported by kind and count, not validated.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.31.0"
"""The oldest version the manifests promise to run on is 1.29 (k8s/README.md); validate against a
version kubernetes-validate ships that is close to it."""
OPERATOR_COMPONENT = "../../base/monitoring/operator"


def kustomize(overlay: Path) -> str:
    """`kustomize build`, through kubectl's embedded kustomize when no standalone binary is there."""
    if shutil.which("kustomize"):
        command = ["kustomize", "build", str(overlay)]
    elif shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(overlay)]
    else:
        raise SystemExit("neither kustomize nor kubectl is on PATH: install kubectl (it embeds kustomize)")
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def validate(documents: list[dict[str, Any]], label: str) -> list[str]:
    errors: list[str] = []
    unchecked: Counter[str] = Counter()
    for doc in documents:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unchecked[f"{doc.get('apiVersion')} {doc.get('kind')}"] += 1
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{label}: {name}: {exc.message} at {'.'.join(map(str, exc.path))}")
    checked = len(documents) - sum(unchecked.values())
    others = ", ".join(f"{kind} ×{n}" for kind, n in sorted(unchecked.items()))
    print(f"{label}: {checked} objects valid (Kubernetes {KUBERNETES_VERSION}, strict); no schema: {others}")
    return errors


def check_overlays() -> list[str]:
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        k8s = Path(scratch) / "k8s"
        shutil.copytree(ROOT / "k8s", k8s)
        example = k8s / "base" / "secrets.env.example"
        for overlay in sorted(p for p in (k8s / "overlays").iterdir() if p.is_dir()):
            secrets = overlay / "secrets.env"
            if not secrets.exists():
                shutil.copy(example, secrets)
            for with_operator in (False, True):
                if with_operator:
                    kustomization = overlay / "kustomization.yaml"
                    spec = yaml.safe_load(kustomization.read_text())
                    spec.setdefault("components", []).append(OPERATOR_COMPONENT)
                    kustomization.write_text(yaml.safe_dump(spec))
                label = f"k8s/overlays/{overlay.name}" + (" + operator component" if with_operator else "")
                try:
                    rendered = kustomize(overlay)
                except subprocess.CalledProcessError as exc:
                    errors.append(f"{label}: kustomize failed: {exc.stderr.strip()}")
                    continue
                documents = [d for d in yaml.safe_load_all(rendered) if d]
                errors += validate(documents, label)
    return errors


def check_compose() -> list[str]:
    command = [
        str(Path(sys.executable).parent / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(ROOT / "docker-compose.yml"),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    print(f"docker-compose.yml: {done.stdout.strip()}")
    return [] if done.returncode == 0 else [f"docker-compose.yml: {done.stdout.strip()} {done.stderr.strip()}"]


def main() -> None:
    errors = check_overlays() + check_compose()
    for line in errors:
        print(f"ERROR {line}", file=sys.stderr)
    raise SystemExit(1 if errors else 0)


if __name__ == "__main__":
    main()
