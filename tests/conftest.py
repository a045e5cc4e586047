"""Shared fixtures. The Kayse sandbox fixture lives here so every suite talks to one real server."""
