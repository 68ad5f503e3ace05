"""Partners' Kafka access in k8s (Strimzi KafkaUser) and compose (SASL/SCRAM + ACLs): each partner
principal may read only its own topic and consumer groups with its own prefix."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml

from shared.contracts import topics

ROOT = Path(__file__).resolve().parents[2]
KAFKA = ROOT / "k8s/base/kafka"


def expected_acls(partner_user_id: str) -> list[dict[str, Any]]:
    return [
        {
            "resource": {"type": "topic", "name": topics.partner_topic(partner_user_id), "patternType": "literal"},
            "operations": ["Read", "Describe"],
        },
        {
            "resource": {
                "type": "group",
                "name": topics.partner_group_prefix(partner_user_id),
                "patternType": "prefix",
            },
            "operations": ["Read", "Describe"],
        },
    ]


def check_user(doc: dict[str, Any]) -> None:
    partner = doc["metadata"]["labels"]["kameng.io/partner-user-id"]
    assert doc["kind"] == "KafkaUser" and doc["metadata"]["name"] == f"partner-{partner}"
    assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "kameng"
    assert doc["spec"]["authentication"] == {"type": "scram-sha-512"}
    assert doc["spec"]["authorization"]["acls"] == expected_acls(partner)  # nothing more: no writes, no other topic


def test_every_partner_kafka_user_reads_only_its_own_topic_and_groups() -> None:
    docs = [d for d in yaml.safe_load_all((KAFKA / "partner-users.yaml").read_text()) if d]
    assert docs
    for doc in docs:
        check_user(doc)
    kustomization = yaml.safe_load((ROOT / "k8s/base/kustomization.yaml").read_text())
    assert "kafka/partner-users.yaml" in kustomization["resources"]


def test_the_template_renders_a_valid_partner_user() -> None:
    rendered = string.Template((KAFKA / "partner-user.template.yaml").read_text()).substitute(
        PARTNER_USER_ID="3f6c0a9e2b7d4c1e8f5a6b7c8d9e0f1a"
    )
    check_user(yaml.safe_load(rendered))


def test_the_cluster_authorizes_and_partners_authenticate_with_scram() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all((KAFKA / "kafka.yaml").read_text()) if d}
    kafka = docs["Kafka"]["spec"]
    assert kafka["kafka"]["authorization"]["type"] == "simple"
    listeners = {listener["name"]: listener for listener in kafka["kafka"]["listeners"]}
    assert listeners["partners"]["authentication"] == {"type": "scram-sha-512"} and listeners["partners"]["tls"]
    assert "userOperator" in kafka["entityOperator"]


def test_compose_has_a_scram_listener_with_acls_for_a_sample_partner() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    env = compose["kafka"]["environment"]
    assert "PARTNERS:SASL_PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_LISTENER_NAME_PARTNERS_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    script = compose["kafka-init"]["command"][0]
    assert "SCRAM-SHA-512=" in script and "--resource-pattern-type prefixed" in script
    assert '--topic "partner.$$PARTNER_USER_ID.order-events.v1"' in script
    assert "partner.order-events.v1" not in script  # the shared topic is gone
    assert compose["support"]["environment"]["PARTNER_FEED_BOOTSTRAP_SERVERS"] == "localhost:9094"
