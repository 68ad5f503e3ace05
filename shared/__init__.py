"""The library every Kameng service shares: contracts, messaging, storage, HTTP and telemetry."""
