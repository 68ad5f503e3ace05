"""The manifest check really rejects a broken object (the check itself runs as `make check-manifests`)."""

from __future__ import annotations

from typing import Any

from deploy.check_manifests import validate


def deployment(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "order"},
        "spec": {
            "selector": {"matchLabels": {"app": "order"}},
            "template": {"metadata": {"labels": {"app": "order"}}, "spec": {"containers": [container]}},
        },
    }


def test_a_valid_deployment_passes_and_operator_kinds_are_only_counted() -> None:
    kafka = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic", "metadata": {"name": "t"}}
    assert validate([deployment(name="order", image="kameng:0.1.0"), kafka], "test") == []


def test_a_misspelt_field_fails_strict_validation() -> None:
    errors = validate([deployment(name="order", image="kameng:0.1.0", imagePullPolicyy="Always")], "test")
    assert len(errors) == 1 and "Deployment/order" in errors[0]


def test_a_missing_required_field_fails() -> None:
    errors = validate([deployment(image="kameng:0.1.0")], "test")  # a container needs a name
    assert len(errors) == 1 and "name" in errors[0]
