"""The leaderboard's routes, apart from the app that serves them (``bench.leaderboard.service.create_app``): the
write API and JSON lists (``api``), the public pages and files (``pages``), and what they share (``common``: the
service's ``State`` in ``app.state.bench``, error answers, the CSPs)."""

from __future__ import annotations

from starlette.routing import Route

from bench.leaderboard.routes import api, pages

#: Every route, in matching order.
ROUTES = [
    Route("/", pages.index),
    Route("/index.html", pages.index),
    Route("/healthz", api.health),
    Route("/api/v1/submissions", api.submit, methods=["POST"]),
    Route("/datasets.json", api.datasets_json),
    Route("/submissions.json", api.submissions_json),
    Route("/datasets/{name}.{fmt}", pages.dataset_view),
    Route("/submissions/{sid}.{fmt}", pages.submission_view),
    Route("/submissions/{sid}/{file}", pages.submission_file),
]
#: Status code -> handler: unknown paths and methods.
EXCEPTION_HANDLERS = {404: pages.not_found, 405: pages.not_found}
