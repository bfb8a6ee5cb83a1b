"""The one error the impairment layer raises: a :class:`~netlens.errors.UserError` with one sentence."""

from __future__ import annotations

from netlens.errors import UserError


class ImpairError(UserError):
    """A lab network could not be built, changed or torn down; ``str(self)`` says why in one sentence."""
