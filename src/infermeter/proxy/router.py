"""Which upstream a request goes to where the proxy fronts several replicas of one model.

The two policies are the ones ``infermeter simulate --replicas K --router`` and ``plan``
model, decided the same way, so that a replica count planned by simulation can be checked
by measurement behind the proxy: ``round-robin`` takes the replicas in turn;
``least-outstanding`` takes the one with the fewest requests sent and not yet answered,
the first of them on a tie.
"""

from __future__ import annotations

from infermeter.predict.simulate import Router

__all__ = ["Replicas", "Router"]


class Replicas:
    """Requests outstanding per upstream, and the pick of the next one."""

    def __init__(self, urls: tuple[str, ...], router: Router = "round-robin") -> None:
        if not urls:
            raise ValueError("a proxy needs at least one upstream")
        self.urls = urls
        self.router = router
        self.outstanding = [0] * len(urls)
        self._turn = 0

    def take(self) -> int:
        """The upstream for the next request (counted outstanding until :meth:`done`)."""
        if self.router == "round-robin":
            i = self._turn % len(self.urls)
            self._turn += 1
        else:
            i = min(range(len(self.urls)), key=self.outstanding.__getitem__)
        self.outstanding[i] += 1
        return i

    def done(self, i: int) -> None:
        self.outstanding[i] -= 1
