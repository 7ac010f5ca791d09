"""Capturing real coding agents through their hooks (Claude Code, Codex, Gemini CLI,
Cursor, git): the hook client, the collector (``ledger serve``), the payload mapping,
install/uninstall/status. See docs/agents.md.

Nothing is imported here: ``nervous_system.hooks.client`` runs as a stand-alone file
under ``python -S -I`` and must stay stdlib-only.
"""
