"""What the server-rendered pages share: translations (the team's web UI will use it too)."""
