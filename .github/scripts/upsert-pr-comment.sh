#!/usr/bin/env bash
# Create, or update in place, the one pull-request comment that starts with MARKER, so a report
# posted on every push never piles up. Usage:
#   upsert-pr-comment.sh REPO PR_NUMBER HEAD_SHA MARKER BODY_FILE
# PR_NUMBER may come from an untrusted artifact: it must be a number, and the pull request's head
# must be HEAD_SHA (the commit the report was made for), or nothing is posted.
# Needs `gh` with GH_TOKEN (pull-requests: write); `-F body=@FILE` reads the body from a file
# (cli/cli pkg/cmd/api/api.go, --field). GitHub caps a comment at 65,536 characters.
set -euo pipefail

repo="$1" pr="$2" head_sha="$3" marker="$4" body_file="$5"
limit=60000

if ! [[ "$pr" =~ ^[0-9]+$ ]]; then
  echo "upsert-pr-comment: not a pull request number: $pr" >&2
  exit 2
fi
actual_sha="$(gh api "repos/$repo/pulls/$pr" --jq .head.sha)"
if [ "$actual_sha" != "$head_sha" ]; then
  echo "upsert-pr-comment: pull request $pr is at $actual_sha, not $head_sha; not commenting" >&2
  exit 0
fi

body="$(mktemp)"
{
  printf '%s\n' "$marker"
  head -c "$limit" "$body_file"
  if [ "$(wc -c < "$body_file")" -gt "$limit" ]; then
    printf '\n```\n\n(truncated: the whole report is in the workflow run'"'"'s artifacts)\n'
  fi
} > "$body"

existing="$(gh api --paginate "repos/$repo/issues/$pr/comments" \
  --jq ".[] | select(.body | startswith(\"$marker\")) | .id" | head -n1)"
if [ -n "$existing" ]; then
  gh api --method PATCH "repos/$repo/issues/comments/$existing" -F "body=@$body" > /dev/null
else
  gh api --method POST "repos/$repo/issues/$pr/comments" -F "body=@$body" > /dev/null
fi
