"""Tests of reminders, lesson change notices, the bell and its websocket."""
