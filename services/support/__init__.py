"""The support service: after-sales tickets, urges, announcements, help center, notifications and
partner webhooks.
"""
