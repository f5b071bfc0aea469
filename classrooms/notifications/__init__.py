"""In-app notifications and their emails: lesson reminders, cancellation and move notices, the
bell's live updates."""
