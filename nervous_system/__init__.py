"""The agent SDK: record decisions, file changes, messages and signals.

    from nervous_system import Recorder
    rec = Recorder(project_id="web", agent_id="coder-1", agent_role="coder")
    rec.decision("use a trie", confidence=0.7)
    rec.file_change("src/trie.py", b"...")
"""

from nervous_system.errors import InvalidRecord, RecordFailed, RecorderError
from nervous_system.recorder import Recorder

__all__ = ["Recorder", "RecorderError", "InvalidRecord", "RecordFailed"]
