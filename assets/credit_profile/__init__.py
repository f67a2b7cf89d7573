"""One credit profile per subject across every feed, and the register of who looked (查询使用登记)."""

from assets.credit_profile.audit import register_query, verify_chain
from assets.credit_profile.profile import ProfileError, build_profile, render_text, run_profile

__all__ = ["ProfileError", "build_profile", "register_query", "render_text", "run_profile", "verify_chain"]
