"""The gateway: the platform's only public door. Routes /api/v1/<area>/... to the owning service."""
