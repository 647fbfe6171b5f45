"""Skills: SKILL.md folders and their registry."""
