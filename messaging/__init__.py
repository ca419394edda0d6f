"""Conversations, memberships, messages, the history and group API, and the logic worker."""
