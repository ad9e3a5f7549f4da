"""Which component of a mixture of meta-models the stream's tasks route to, watched over the last
scored tasks: when most of them move to another component, the stream has moved to that
component's regime. A regime that comes back is usually routed home before any drift alarm (its
component fits it, so the loss need not rise): this is how the worker sees it, and says so with a
``RegimeRecognised`` event. One model (or one component) has nothing to watch.

>>> watch = RegimeWatch(window=4, share=0.75)
>>> [watch.observe([0, 0, 0, 0], 2), watch.home]
[None, 0]
>>> watch.observe([1, 1, 1], 2)
RegimeShift(component=1, previous=0, share=0.75)
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegimeShift:
    component: int  # where most of the recent tasks route now
    previous: int  # where they routed before
    share: float  # of the window's tasks


@dataclass
class RegimeWatch:
    window: int = 64  # scored tasks looked at
    # of them on one component to call it the stream's regime. Routing a task by 10 points is noisy: at
    # 0.55, two components that fit a stationary stream alike traded the home back and forth 17 times
    # in 22 minutes of the self-healing bench's faults (56-59% of 64 tasks each time), and each such
    # "shift" marked the era's drift answered. 0.65 is what an even split reaches about once in a hundred
    # windows of 64; a regime that truly comes back routes home 70-80% of its tasks.
    share: float = 0.65
    routes: deque = field(default_factory=deque)
    home: int | None = None  # the component most tasks route to (None: not settled yet)
    components: int = 1

    def observe(self, routes: list[int], components: int) -> RegimeShift | None:
        """Take the routes of newly scored tasks (``components``: how many the model has now; a
        change renumbers them, so the watch starts again). A shift when a component other than
        the home one holds ``share`` of the window; the first settled home is not a shift."""
        if components != self.components:
            self.routes.clear()
            self.home, self.components = None, components
        if components < 2:
            return None
        self.routes.extend(routes)
        while len(self.routes) > self.window:
            self.routes.popleft()
        if len(self.routes) < self.window:
            return None
        top, count = Counter(self.routes).most_common(1)[0]
        if count < self.share * self.window or top == self.home:
            return None
        previous, self.home = self.home, top
        return None if previous is None else RegimeShift(top, previous, count / self.window)


def watch_routes(watch: RegimeWatch, champion, scored: int) -> RegimeShift | None:
    """A mixture's champion just routed the ``scored`` tasks (its ``last_routes``): feed them to the
    model's watch. Nothing for a model that does not route."""
    routes = getattr(champion, "last_routes", None)
    if routes is None or not scored or len(routes) != scored:
        return None
    return watch.observe(routes.tolist(), len(champion.components))
