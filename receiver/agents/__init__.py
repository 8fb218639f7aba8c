"""Agent-side tools that run in the user's shell: cc-launch, the codex shim, the hook helper.

Standard library only (Python 3.9+): they must run under whatever ``python3`` is first
on ``PATH``, without the receiver's dependencies.
"""
