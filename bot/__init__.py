"""The Slack side of smsbridge: the Bolt app, listeners, Block Kit and the CLI."""
