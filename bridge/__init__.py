"""The SMS side of smsbridge: CRM Text client, callbacks, storage, jobs and rules.

Nothing in this package imports Slack or ``bot``.
"""
