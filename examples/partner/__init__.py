"""A partner's quickstart for Kameng's order events: its own Kafka topic (aiokafka) and signed
webhooks, both deduplicated on `event_id`. See README.md here and docs/partner-events.md."""
