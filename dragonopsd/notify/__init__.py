"""Notifications: channels (webhook, Slack, Discord, Teams, Mattermost, email), routing by
monitor scope, and delivery with retries that never holds up probing."""
