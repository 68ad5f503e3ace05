"""The identity service: accounts, credentials, tokens, real-name verification, 2FA, member levels and
partner API keys.
"""
