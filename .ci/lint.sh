#!/usr/bin/env bash
# Static checks: lint and format, types, import boundaries, migrations in step with models, and
# Django's deployment checks under production settings.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy (strict)"
$BIN/mypy .
echo "== import-linter"
$BIN/lint-imports
echo "== migrations match the models"
HOMEROOM_DATA_DIR="$(mktemp -d)" $BIN/python manage.py makemigrations --check --dry-run
echo "== check --deploy under production settings"
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
  DJANGO_DEBUG=0 \
  DJANGO_SECRET_KEY="$($BIN/python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
  DJANGO_ALLOWED_HOSTS=homeroom.example.org \
  DATABASE_URL=postgres://homeroom:secret@127.0.0.1:5432/homeroom \
  REDIS_URL=redis://127.0.0.1:6379/0 \
  $BIN/python manage.py check --deploy --fail-level WARNING
