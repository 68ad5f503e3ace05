"""Kafka messaging: broker factory, transactional outbox and its relay, inbox, consumers, DLQ."""
