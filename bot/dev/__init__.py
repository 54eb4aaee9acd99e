"""Local stand-ins (fake Slack, fake CRM Text, a live local server, the demo).

Only ``bot.cli`` and the tests may import this package (tests/test_architecture.py checks it):
nothing that runs in production depends on a fake.
"""
